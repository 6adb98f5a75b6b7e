//! Bringing the crate's migrations into an application's migrations folder, so that one
//! `diesel migration run` there applies both, in version order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The crate's migrations as files: each folder's name, and its files' names and contents
/// (written by `build.rs` from `migrations/`, the folder [`MIGRATIONS`](super::MIGRATIONS) embeds).
const FILES: &[(&str, &[(&str, &str)])] = include!(concat!(env!("OUT_DIR"), "/migration_files.rs"));

/// Why [`copy_migrations`] or [`missing_migrations`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyMigrationsError {
    /// The folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A copy of one of the crate's migrations differs from it (a file changed or missing). A
    /// migration that has landed never changes, so the copy was edited: restore it (delete the
    /// folder and copy again) rather than let the CLI and the embedded migrations disagree.
    #[error("{} is not authingo's {migration}/{file}: restore it (delete the folder, copy again)", path.display())]
    Changed {
        /// The migration's folder name.
        migration: &'static str,
        /// The file that differs.
        file: &'static str,
        /// Where the copy is.
        path: PathBuf,
    },
    /// A migration of the folder's own has the version of one of the crate's: Diesel knows a
    /// migration by its version, and would take the two for one.
    #[error("{existing} has the version of authingo's {migration}: give yours another")]
    VersionTaken {
        /// The crate's migration.
        migration: &'static str,
        /// The folder's migration with the same version.
        existing: String,
    },
}

/// Writes into `dir`, an application's migrations folder (made if missing), each of the crate's
/// migrations it does not hold yet: a folder of the same name with the same `up.sql` and
/// `down.sql`, byte for byte. Returns the names written, empty when `dir` was up to date. Copies
/// already there are compared, never rewritten. Run it again after upgrading the crate: a new
/// version may bring new migrations.
///
/// # Errors
/// [`CopyMigrationsError::Changed`] when a copy differs from the crate's migration;
/// [`CopyMigrationsError::VersionTaken`] when one of the folder's own migrations has the version
/// of one of the crate's; [`CopyMigrationsError::Io`] when the folder cannot be read or written.
/// Nothing is written unless every check passes.
pub fn copy_migrations(dir: impl AsRef<Path>) -> Result<Vec<&'static str>, CopyMigrationsError> {
    let dir = dir.as_ref();
    let missing = missing_migrations(dir)?;
    for name in &missing {
        write_migration(dir, name)?;
    }
    Ok(missing)
}

/// The names of the crate's migrations that `dir` does not hold yet: what [`copy_migrations`]
/// would write. An application's test can require it empty, so that a new migration of the crate
/// is not forgotten on upgrade.
///
/// # Errors
/// As for [`copy_migrations`].
pub fn missing_migrations(dir: impl AsRef<Path>) -> Result<Vec<&'static str>, CopyMigrationsError> {
    let dir = dir.as_ref();
    let theirs = folder_names(dir)?;
    let mut missing = Vec::new();
    for &(name, files) in FILES {
        if theirs.iter().any(|theirs| theirs == name) {
            for &(file, contents) in files {
                let path = dir.join(name).join(file);
                match fs::read(&path) {
                    Ok(copy) if copy == contents.as_bytes() => {}
                    Ok(_) => return Err(changed(name, file, path)),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        return Err(changed(name, file, path));
                    }
                    Err(source) => return Err(CopyMigrationsError::Io { path, source }),
                }
            }
        } else if let Some(existing) = theirs.iter().find(|t| version(t) == version(name)) {
            return Err(CopyMigrationsError::VersionTaken {
                migration: name,
                existing: existing.clone(),
            });
        } else {
            missing.push(name);
        }
    }
    Ok(missing)
}

fn changed(migration: &'static str, file: &'static str, path: PathBuf) -> CopyMigrationsError {
    CopyMigrationsError::Changed {
        migration,
        file,
        path,
    }
}

/// The names of the folders in `dir`; none if it does not exist.
fn folder_names(dir: &Path) -> Result<Vec<String>, CopyMigrationsError> {
    let io = |source| CopyMigrationsError::Io {
        path: dir.to_owned(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io(err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// A migration's version as Diesel reads it from the folder's name: the part before the first
/// `_`, without dashes.
fn version(name: &str) -> String {
    name.split('_').next().unwrap_or(name).replace('-', "")
}

/// Writes the migration `name` into `dir`: its files go into a hidden folder first, renamed into
/// place once complete, so that an interrupted copy leaves no half migration for Diesel to run.
fn write_migration(dir: &Path, name: &'static str) -> Result<(), CopyMigrationsError> {
    let files = FILES
        .iter()
        .find(|(folder, _)| *folder == name)
        .map_or(&[][..], |(_, files)| *files);
    let staging = dir.join(format!(".{name}.partial"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CopyMigrationsError::Io { path, source }
    };
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    fs::create_dir_all(&staging).map_err(io(&staging))?;
    for &(file, contents) in files {
        let path = staging.join(file);
        fs::write(&path, contents).map_err(io(&path))?;
    }
    let target = dir.join(name);
    fs::rename(&staging, &target).map_err(io(&target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_diesel_reads_them() {
        assert_eq!(
            version("2026-11-27-000000_create_authingo"),
            "20261127000000"
        );
        assert_eq!(version("20261127000000_posts"), "20261127000000");
    }

    #[test]
    fn every_migration_is_listed_with_its_up_and_down() {
        assert!(FILES.len() >= 3);
        for (name, files) in FILES {
            let names: Vec<&str> = files.iter().map(|(file, _)| *file).collect();
            assert!(
                names.contains(&"up.sql") && names.contains(&"down.sql"),
                "{name}"
            );
        }
        assert_eq!(FILES[0].0, "2026-11-27-000000_create_authingo");
        assert_eq!(FILES[0].1[1].1, super::super::SCHEMA_SQL);
    }
}

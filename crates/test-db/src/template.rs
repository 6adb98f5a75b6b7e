//! The migrated template that test databases are cloned from, named after its migrations.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::server::{connect, create_database, drop_database, execute, query_value};
use crate::urls::{server_url, url_for};
use crate::{BoxError, Error, PREFIX, TEMPLATE_KIND, sweep_leftovers};

/// Serialises template builds across processes (a `bigint` advisory lock key: "auth_tpl").
const LOCK_KEY: i64 = 0x6175_7468_5f74_706c;

/// Hex digits of the migrations' SHA-256 in the template's name.
const HASH_DIGITS: usize = 12;

/// What a [`Migrate`] step returns.
pub type MigrateFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// Applies the migrations to the (empty) database at the given URL.
pub type Migrate = fn(String) -> MigrateFuture;

/// A migrated template database, built at most once per process (and once per server, since its
/// name is the migrations' hash). Meant for a `static`:
///
/// ```no_run
/// use authingo_test_db::{MigrateFuture, Template, TestDatabase};
///
/// static TEMPLATE: Template = Template::new(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"),
///     migrate,
/// );
///
/// fn migrate(url: String) -> MigrateFuture {
///     Box::pin(async move {
///         // Apply the migrations to `url`, e.g. with `authingo::postgres::run_migrations`.
///         Ok(())
///     })
/// }
///
/// # async fn test() {
/// let db = TestDatabase::new(&TEMPLATE).await;
/// # }
/// ```
#[derive(Debug)]
pub struct Template {
    migrations_dir: &'static str,
    migrate: Migrate,
    name: OnceCell<String>,
}

impl Template {
    /// The template of the migrations in `migrations_dir` (an absolute path), which `migrate`
    /// applies.
    pub const fn new(migrations_dir: &'static str, migrate: Migrate) -> Self {
        Self {
            migrations_dir,
            migrate,
            name: OnceCell::const_new(),
        }
    }

    /// The template's name, after building it on [`server_url`] if the server does not have it
    /// yet. The first call also sweeps leftovers ([`sweep_leftovers`]); a failing sweep is
    /// reported on stderr, not returned.
    ///
    /// # Errors
    /// [`Error::Migrations`] when the folder cannot be read, [`Error::Connect`] or
    /// [`Error::Query`] when the server fails, [`Error::Migrate`] when the migrate step does.
    pub async fn name(&self) -> Result<&str, Error> {
        self.name
            .get_or_try_init(|| self.build())
            .await
            .map(String::as_str)
    }

    async fn build(&self) -> Result<String, Error> {
        let server = server_url();
        let name = template_name(Path::new(self.migrations_dir))?;
        let admin = connect(&server).await?;
        // One builder at a time across processes. Held by this session: released below, or by
        // the server if this process dies while building.
        execute(&admin, &format!("SELECT pg_advisory_lock({LOCK_KEY})")).await?;
        if let Err(err) = sweep_leftovers(&server).await {
            eprintln!("authingo-test-db: sweeping leftover databases: {err}");
        }
        let exists: bool = query_value(
            &admin,
            "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await?;
        if !exists {
            // Built under another name and renamed, so that a half-built template (its builder
            // died) is never cloned; the next builder drops it.
            let building = format!("{name}_building");
            drop_database(&admin, &building).await?;
            create_database(&admin, &building, None).await?;
            (self.migrate)(url_for(&server, &building)?)
                .await
                .map_err(|error| Error::Migrate {
                    database: building.clone(),
                    error,
                })?;
            execute(
                &admin,
                &format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""),
            )
            .await?;
        }
        execute(&admin, &format!("SELECT pg_advisory_unlock({LOCK_KEY})")).await?;
        Ok(name)
    }
}

/// `authingo_tpl_<hash>`: the first [`HASH_DIGITS`] hex digits of a SHA-256 over every file
/// under `dir`, in order of relative path, each as its path (`/`-separated) and its contents,
/// both length-prefixed. Relative paths, so that every checkout of the same migrations shares
/// one template; SHA-256, so that the name is the same whichever Rust built the tests.
fn template_name(dir: &Path) -> Result<String, Error> {
    let mut files = Vec::new();
    walk(dir, &mut Vec::new(), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for (relative, path) in files {
        let contents = std::fs::read(&path).map_err(|error| Error::Migrations { path, error })?;
        for part in [relative.as_bytes(), &contents] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(format!("{PREFIX}{TEMPLATE_KIND}_{}", &hex[..HASH_DIGITS]))
}

/// Collects the files under `dir` as (path relative to the root, joined with `/`; full path).
fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), Error> {
    let failed = |error| Error::Migrations {
        path: dir.to_owned(),
        error,
    };
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let path = entry.path();
        prefix.push(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().map_err(failed)?.is_dir() {
            walk(&path, prefix, files)?;
        } else {
            files.push((prefix.join("/"), path));
        }
        prefix.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary one, removed when the value goes.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("authingo-test-db-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn write(&self, relative: &str, contents: &str) {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn migrations(name: &str) -> Folder {
        let folder = Folder::new(name);
        folder.write(
            "2025-01-01-000000_create/up.sql",
            "CREATE TABLE t (id int);\n",
        );
        folder.write("2025-01-01-000000_create/down.sql", "DROP TABLE t;\n");
        folder
    }

    #[test]
    fn template_name_is_a_stable_hash_of_relative_paths_and_contents() {
        let one = migrations("one");
        // Pinned (the same as Python's hashlib gives for the scheme): the same on every machine,
        // Rust release and checkout.
        assert_eq!(template_name(&one.0).unwrap(), "authingo_tpl_9366b521532b");
        let elsewhere = migrations("elsewhere");
        assert_eq!(
            template_name(&elsewhere.0).unwrap(),
            template_name(&one.0).unwrap()
        );
    }

    #[test]
    fn template_name_changes_with_a_file_or_its_path() {
        let base = template_name(&migrations("base").0).unwrap();
        let edited = migrations("edited");
        edited.write(
            "2025-01-01-000000_create/up.sql",
            "CREATE TABLE t (id bigint);\n",
        );
        assert_ne!(template_name(&edited.0).unwrap(), base);
        let added = migrations("added");
        added.write("2025-02-01-000000_more/up.sql", "");
        assert_ne!(template_name(&added.0).unwrap(), base);
        let renamed = Folder::new("renamed");
        renamed.write(
            "2025-01-01-000000_create/up.sql",
            "CREATE TABLE t (id int);\n",
        );
        renamed.write("2025-01-01-000000_create/down2.sql", "DROP TABLE t;\n");
        assert_ne!(template_name(&renamed.0).unwrap(), base);
    }

    #[test]
    fn template_name_reports_a_missing_folder() {
        let err = template_name(Path::new("/nonexistent/authingo/migrations")).unwrap_err();
        assert!(matches!(err, Error::Migrations { .. }), "{err}");
    }
}

//! `copy_migrations`: the crate's migrations, byte for byte, into an application's folder beside
//! its own; copies checked, never rewritten.

use std::fs;
use std::path::Path;

use authingo::postgres::{CopyMigrationsError, copy_migrations, missing_migrations};

/// The crate's own migrations folder.
fn ours() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
}

/// The names of the folders in `dir`, sorted.
fn folders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn copies_every_migration_byte_for_byte_beside_the_applications_own() {
    let app = tempfile::tempdir().unwrap();
    let dir = app.path().join("migrations");
    fs::create_dir_all(dir.join("2026-11-30-154500_create_posts")).unwrap();

    let written = copy_migrations(&dir).unwrap();
    assert_eq!(written, folders(ours()));
    for name in &written {
        for file in ["up.sql", "down.sql"] {
            assert_eq!(
                fs::read(dir.join(name).join(file)).unwrap(),
                fs::read(ours().join(name).join(file)).unwrap(),
                "{name}/{file}"
            );
        }
    }
    let mut expected = folders(ours());
    expected.push("2026-11-30-154500_create_posts".to_owned());
    // In version order, as `folders` lists them: ours may come after the application's.
    expected.sort();
    assert_eq!(folders(&dir), expected, "no staging folder left");

    assert!(missing_migrations(&dir).unwrap().is_empty());
    assert!(copy_migrations(&dir).unwrap().is_empty(), "up to date");
}

#[test]
fn a_missing_migration_is_found_and_copied_alone() {
    let app = tempfile::tempdir().unwrap();
    let all = copy_migrations(app.path()).unwrap();
    let last = all.last().unwrap();
    fs::remove_dir_all(app.path().join(last)).unwrap();

    assert_eq!(missing_migrations(app.path()).unwrap(), [*last]);
    assert_eq!(copy_migrations(app.path()).unwrap(), [*last]);
}

#[test]
fn an_edited_copy_is_refused_and_left_as_it_is() {
    let app = tempfile::tempdir().unwrap();
    let first = copy_migrations(app.path()).unwrap()[0];
    let down = app.path().join(first).join("down.sql");
    fs::write(&down, "-- edited\n").unwrap();

    let err = copy_migrations(app.path()).unwrap_err();
    assert!(
        matches!(&err, CopyMigrationsError::Changed { migration, file: "down.sql", .. } if *migration == first),
        "{err:?}"
    );
    assert_eq!(fs::read_to_string(&down).unwrap(), "-- edited\n");
}

#[test]
fn an_applications_migration_with_one_of_our_versions_is_refused() {
    let app = tempfile::tempdir().unwrap();
    fs::create_dir(app.path().join("2026-11-27-000000_create_posts")).unwrap();

    let err = copy_migrations(app.path()).unwrap_err();
    assert!(
        matches!(&err, CopyMigrationsError::VersionTaken { existing, .. }
            if existing == "2026-11-27-000000_create_posts"),
        "{err:?}"
    );
    assert_eq!(folders(app.path()), ["2026-11-27-000000_create_posts"]);
}

//! Rebuild when a migration changes, since `embed_migrations!` reads the folder at compile time;
//! and list the migrations' files for `postgres::copy_migrations` (`$OUT_DIR/migration_files.rs`:
//! each folder's name with its files' names and contents, by `include_str!`).

use std::fs;
use std::io;
use std::path::Path;

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=migrations");
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?)
        .join("migrations");
    let mut folders: Vec<_> = fs::read_dir(&root)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    folders.retain(|path| path.is_dir());
    folders.sort();

    let mut out = String::from("&[\n");
    for folder in folders {
        let mut files: Vec<_> = fs::read_dir(&folder)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        files.retain(|path| path.is_file());
        files.sort();
        out.push_str(&format!("    ({:?}, &[\n", file_name(&folder)?));
        for file in files {
            let path = file.to_str().ok_or_else(|| not_utf8(&file))?;
            out.push_str(&format!(
                "        ({:?}, include_str!({path:?})),\n",
                file_name(&file)?
            ));
        }
        out.push_str("    ]),\n");
    }
    out.push_str("]\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").map_err(io::Error::other)?).join("migration_files.rs");
    fs::write(dest, out)
}

fn file_name(path: &Path) -> io::Result<&str> {
    path.file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| not_utf8(path))
}

fn not_utf8(path: &Path) -> io::Error {
    io::Error::other(format!("{} is not a UTF-8 name", path.display()))
}

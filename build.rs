//! Cargo build script: finds the dataset profiles and their golden tests by name, so adding a
//! dataset is adding files (`mounts/<slug>.toml`, `tests/profiles/<name>.rs`), never a list edit.
//!
//! Writes two files into `OUT_DIR`: `builtin_profiles.rs` (every `mounts/*.toml` embedded with
//! `include_str!`, sorted by file name; `src/profile.rs` includes it) and `golden_tests.rs` (a
//! `#[path]` module per `tests/profiles/*.rs` but `main.rs`; `tests/profiles/main.rs` includes
//! it). Plain std: a glob-embedding crate would do the first half only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn sorted(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=mounts");

    let mut profiles = String::from("&[\n");
    for p in sorted(&root.join("mounts"), "toml") {
        let name = p.file_name().and_then(|n| n.to_str()).expect("UTF-8 profile name");
        writeln!(profiles, "    (\"mounts/{name}\", include_str!({:?})),", p.display().to_string()).unwrap();
    }
    profiles.push(']');
    write_if_changed(&out.join("builtin_profiles.rs"), &profiles);

    // Only the folder's entries matter here (a new or removed test file), but cargo cannot watch
    // entries alone: editing a golden test reruns this script (a few ms) and rebuilds the crate.
    let tests = root.join("tests").join("profiles");
    if tests.is_dir() {
        println!("cargo:rerun-if-changed=tests/profiles");
        let mut mods = String::new();
        for p in sorted(&tests, "rs") {
            let stem = p.file_stem().and_then(|n| n.to_str()).expect("UTF-8 test name");
            if stem == "main" {
                continue;
            }
            let ident: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            writeln!(mods, "#[path = {:?}]\nmod {ident};", p.display().to_string()).unwrap();
        }
        write_if_changed(&out.join("golden_tests.rs"), &mods);
    }
}

/// Leaves an unchanged file alone, so its mtime does not make cargo rebuild what includes it.
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

//! Fuzz regressions: every input under `tests/fuzz-regressions/<target>/` (a crash, hang or OOM
//! a fuzzer found, kept after its fix) and every seed under `fuzz/seeds/<target>/` is run
//! through the same entry point as its `fuzz/` target (`medfs::fuzzing`), on stable Rust: no
//! panic, and each input done within a time bound.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medfs::fuzzing::TARGETS;

/// Per input. The fuzzers' bound is 10 s on an optimized build; this is a debug build.
const BOUND: Duration = Duration::from_secs(60);

fn inputs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root) else { return out };
    for dir in dirs {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(TARGETS.iter().any(|(t, _)| *t == target), "{}: no fuzz target named {target}", dir.display());
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                out.push((target.clone(), f));
            }
        }
    }
    out.sort();
    out
}

fn run_all(root: &Path) -> usize {
    let inputs = inputs(root);
    let mut failures = Vec::new();
    for (target, path) in &inputs {
        let run = TARGETS.iter().find(|(t, _)| t == target).unwrap().1;
        let data = std::fs::read(path).unwrap();
        let started = Instant::now();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failures.push(format!("{}: panicked", path.display()));
        }
        let took = started.elapsed();
        if took > BOUND {
            failures.push(format!("{}: took {took:?}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} inputs failed:\n{}", failures.len(), inputs.len(), failures.join("\n"));
    inputs.len()
}

#[test]
fn fuzz_regressions_stay_fixed() {
    let n = run_all(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions"));
    eprintln!("{n} regression inputs passed");
}

#[test]
fn fuzz_seeds_pass_the_harness() {
    let n = run_all(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds"));
    assert!(n > 0, "seed corpus missing");
    eprintln!("{n} seeds passed");
}

/// The index seeds (`.seed`: an index body made by medfs for the archive after it) must load and
/// reopen their archive under the current index and codec table formats; a seed left in an old
/// format would stop at the first check and the fuzzer would explore nothing behind it.
#[test]
fn index_seeds_load_under_the_current_formats() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/index");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "seed") {
            assert!(medfs::fuzzing::index_reopens(&std::fs::read(&path).unwrap()), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 10, "{n} index seeds");
}

/// Found by the `zip` fuzzer's leak checker on main after the memory-budget change: a big
/// deflated member's `Deflated::Ready` state is cached in the pool's `BlockCache` and holds a
/// `CompressedStream`, which holds an `Arc` of that same cache: a dropped pool never freed its
/// cache (nor the blocks in it). The reader now clears the cache when dropped.
#[test]
fn a_dropped_reader_frees_its_cache() {
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/zip/deflated-member-state-cycle-leak");
    let data = std::fs::read(input).unwrap();
    assert!(!medfs::fuzzing::zip_cache_outlives_reader(&data), "the block cache outlived its reader and pool");
}

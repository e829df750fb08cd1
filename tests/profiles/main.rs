//! Dataset profiles: golden trees of every shipped profile on path lists mimicking the real
//! downloads, validation errors, and NIH scale. Every `tests/profiles/*.rs` is a module here,
//! found by the build script (`build.rs`) with no `mod` line; `every_profile_has_a_golden_test`
//! checks that each `mounts/*.toml` is organized by one of them (`mounts/README.md`, "Adding a
//! dataset").

include!(concat!(env!("OUT_DIR"), "/golden_tests.rs"));

/// Each built-in profile's slug is organized by name (`organize_with("<slug>")`) in some golden
/// test file, so a profile cannot ship untested.
#[test]
fn every_profile_has_a_golden_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/profiles");
    let texts: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let missing: Vec<String> = medfs::profile::builtin()
        .iter()
        .map(|p| p.slug().to_string())
        .filter(|slug| !texts.iter().any(|t| t.contains(&format!("organize_with(\"{slug}\")"))))
        .collect();
    assert!(missing.is_empty(), "profiles without a golden test calling organize_with(\"<slug>\"): {missing:?}");
}

//! Golden test of `mounts/usc-sipi.toml` (the usc-sipi profile's header): volume tarballs with catalogue names and
//! inner-dot names, the built-in description table, an image missing from it.

use crate::common::*;
use serde_json::json;

#[test]
fn usc_sipi_tree_and_sidecars() {
    let mut p = MemPool::new();
    p.add("misc.tar.gz", "misc/4.2.03.tiff", tiff(32, 32, false, false, 1))
        .add("misc.tar.gz", "misc/boat.512.tiff", tiff(32, 32, false, false, 1))
        .add("misc.tar.gz", "misc/4.1.99.tiff", tiff(16, 16, false, false, 1))
        .add("aerials.tar.gz", "aerials/2.1.01.tiff", tiff(32, 32, false, true, 2))
        // A textures archive without its top folder: the volume comes from the archive name.
        .add("textures.tar.gz", "1.1.01.tiff", tiff(32, 32, false, false, 1))
        .add("textures.tar.gz", "1.1.77.tiff", tiff(32, 32, false, false, 1))
        .add("misc.tar.gz", "misc/7.1.99.tiff", tiff(16, 16, false, false, 1))
        .add("misc.tar.gz", "misc/5.1.14.tiff", tiff(16, 16, false, false, 1));
    let ds = p.organize_with("usc-sipi").expect("recognized");
    check_invariants(&ds, &p.organize_with("usc-sipi").unwrap());
    assert_eq!(
        tree(&ds),
        [
            "aerials/2.1.01/2.1.01.tiff",
            "aerials/2.1.01/labels.json",
            "aerials/2.1.01/metadata.json",
            "aerials/patient.json",
            "dataset.json",
            "labels.csv",
            "misc/4.1.99/4.1.99.tiff",
            "misc/4.1.99/labels.json",
            "misc/4.1.99/metadata.json",
            "misc/4.2.03/4.2.03.tiff",
            "misc/4.2.03/labels.json",
            "misc/4.2.03/metadata.json",
            "misc/5.1.14/5.1.14.tiff",
            "misc/5.1.14/labels.json",
            "misc/5.1.14/metadata.json",
            "misc/7.1.99/7.1.99.tiff",
            "misc/7.1.99/labels.json",
            "misc/7.1.99/metadata.json",
            "misc/boat.512/boat.512.tiff",
            "misc/boat.512/labels.json",
            "misc/boat.512/metadata.json",
            "misc/patient.json",
            "textures/1.1.01/1.1.01.tiff",
            "textures/1.1.01/labels.json",
            "textures/1.1.01/metadata.json",
            "textures/1.1.77/1.1.77.tiff",
            "textures/1.1.77/labels.json",
            "textures/1.1.77/metadata.json",
            "textures/patient.json",
        ]
    );
    assert_eq!(json(&ds, "misc/4.2.03/labels.json"), json!({"description": "Mandrill (a.k.a. Baboon)"}));
    assert_eq!(
        json(&ds, "misc/4.2.03/metadata.json"),
        json!({"volume": "misc", "size": 512, "type": "Color", "width": 32, "height": 32, "split": null,
               "source": {"4.2.03.tiff": {"archive": "misc.tar.gz", "path": "misc/4.2.03.tiff"}}})
    );
    assert_eq!(json(&ds, "misc/boat.512/labels.json"), json!({"description": "Fishing Boat"}));
    assert_eq!(json(&ds, "misc/boat.512/metadata.json")["type"], "Gray");
    assert_eq!(json(&ds, "misc/4.1.99/labels.json"), json!({"description": null}));
    let m = json(&ds, "misc/4.1.99/metadata.json");
    assert_eq!((m["size"].clone(), m["type"].clone(), m["width"].clone()), (json!(256), json!(null), json!(16)));
    assert_eq!(json(&ds, "aerials/2.1.01/metadata.json")["width"], 32);
    assert_eq!(json(&ds, "textures/1.1.01/labels.json"), json!({"description": "Grass"}));
    // The table covers the whole misc volume (5.1.14 was missing before); no size is guessed
    // where the catalogue numbering does not give it (textures 1.1.xx and 7.1.xx are 512 px).
    assert_eq!(json(&ds, "misc/5.1.14/labels.json"), json!({"description": "Chemical plant"}));
    assert_eq!(json(&ds, "misc/5.1.14/metadata.json")["type"], "Gray");
    assert_eq!(json(&ds, "textures/1.1.77/metadata.json")["size"], json!(null));
    assert_eq!(json(&ds, "misc/7.1.99/metadata.json")["size"], json!(null));
    let rows: Vec<&str> = include_str!("../../mounts/usc-sipi.toml")
        .lines()
        .filter(|l| l.starts_with("    [\"misc\""))
        .collect();
    assert_eq!(rows.len(), 44, "the misc volume has 44 images");
    assert_eq!(
        labels_csv(&ds).lines().nth(1).unwrap(),
        "aerials/2.1.01/2.1.01.tiff,aerials,2.1.01,,San Diego (Miramar NAS)"
    );
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

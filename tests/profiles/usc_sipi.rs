//! Golden test of `mounts/usc-sipi.toml` (usc-sipi.md): volume tarballs with catalogue names and
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
        .add("textures.tar.gz", "1.1.01.tiff", tiff(32, 32, false, false, 1));
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
            "misc/boat.512/boat.512.tiff",
            "misc/boat.512/labels.json",
            "misc/boat.512/metadata.json",
            "misc/patient.json",
            "textures/1.1.01/1.1.01.tiff",
            "textures/1.1.01/labels.json",
            "textures/1.1.01/metadata.json",
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
    assert_eq!(
        labels_csv(&ds).lines().nth(1).unwrap(),
        "aerials/2.1.01/2.1.01.tiff,aerials,2.1.01,,San Diego (Miramar NAS)"
    );
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

//! NIH scale: 112,120 images over 12 tarballs plus the 112k-row Data_Entry CSV, the BBox list
//! and both split lists, organized once. Asserts correctness only; prints the time (run with
//! `cargo test --release --test nih_scale -- --nocapture`).

use std::time::Instant;

use crate::common::*;
use serde_json::json;

#[test]
fn nih_scale_organize() {
    const N: usize = 112_120;
    let mut p = MemPool::new();
    let mut entry = String::from(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n",
    );
    let mut train = String::new();
    let mut test = String::new();
    let mut bbox = String::from("Image Index,Finding Label,Bbox [x,y,w,h],,,\n");
    let findings = ["No Finding", "Cardiomegaly", "Effusion|Infiltration", "Atelectasis|Mass|Nodule"];
    // Roughly 3.6 images per patient, as in the real set (30,805 patients).
    let mut names = Vec::with_capacity(N);
    for i in 0..N {
        let patient = i * 30_805 / N + 1;
        let follow = i - (patient - 1) * N / 30_805;
        names.push((patient, format!("{patient:08}_{:03}.png", follow % 1000)));
    }
    names.sort_by(|a, b| a.1.cmp(&b.1));
    names.dedup_by(|a, b| a.1 == b.1);
    for (i, (patient, name)) in names.iter().enumerate() {
        // 4,999 / 10,000 × 10 / rest, in name order.
        let tarball = if i < 4_999 { 1 } else { ((i - 4_999) / 10_000 + 2).min(12) };
        p.touch(&format!("images_{tarball:03}.tar.gz"), &format!("images/{name}"));
        entry.push_str(&format!(
            "{name},{},{},{patient},{},M,PA,2682,2749,0.14300000000000002,0.14300000000000002,\n",
            findings[i % 4],
            i % 7,
            20 + i % 60
        ));
        if i % 4 == 0 { &mut test } else { &mut train }.push_str(&format!("{name}\n"));
        if i % 114 == 0 {
            bbox.push_str(&format!(
                "{name},Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661\n"
            ));
        }
    }
    let n = names.len();
    p.add("nih", "Data_Entry_2017_v2020.csv", entry)
        .add("nih", "BBox_List_2017.csv", bbox)
        .add("nih", "train_val_list.txt", train)
        .add("nih", "test_list.txt", test);

    let t = Instant::now();
    let all = p.organize();
    let elapsed = t.elapsed();
    println!("organize: {n} images, all 7 built-in profiles: {elapsed:?}");
    let t = Instant::now();
    let only = p.organize_with("chestxray14").unwrap();
    println!("organize: chestxray14 profile alone: {:?}", t.elapsed());
    assert_eq!(only.files.len(), n);

    assert_eq!(all.len(), 1);
    let ds = &all[0];
    assert_eq!(ds.slug, "chestxray14");
    assert_eq!(ds.files.len(), n);
    assert!(ds.warnings.is_empty(), "{:?}", &ds.warnings[..ds.warnings.len().min(5)]);
    assert_eq!(
        ds.generated.len(),
        2 * n + 2 + json(ds, "dataset.json")["counts"]["patients"].as_u64().unwrap() as usize
    );
    let (pid, name) = &names[4];
    let stem = name.trim_end_matches(".png");
    let l = json(ds, &format!("{pid:08}/{stem}/labels.json"));
    assert_eq!(l["findings"], json!([]));
    assert_eq!(l["no_finding"], true);
    let m = json(ds, &format!("{pid:08}/{stem}/metadata.json"));
    assert_eq!(m["split"], "test");
    assert_eq!(m["patient_id"], *pid);
    assert_eq!(labels_csv(ds).lines().count(), n + 1);
    let sidecar_bytes: usize = ds.generated.iter().map(|g| g.bytes.len()).sum();
    println!("sidecars: {} files, {} bytes", ds.generated.len(), sidecar_bytes);
}

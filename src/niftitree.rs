//! Generic organization of NIfTI volumes that no profile claims (TREE.md: DICOM and NIfTI that
//! no profile claims appear as a generic dataset per source). The layout is a fixed profile,
//! `src/niftitree.toml` (BIDS `sub-*/ses-*`, else the volume's folder as patient and its stem as
//! study), applied by the ordinary organizer to one collection's unclaimed volumes
//! (`collection.rs`) under the slug and title medfs gives it.

use crate::organize::{ContentSource, Dataset, PoolFile, organize};

/// The generic NIfTI layout, a profile medfs applies itself (never listed with the datasets).
const PROFILE: &str = include_str!("niftitree.toml");

/// A volume the generic NIfTI dataset may take: `.nii` or `.nii.gz` (any case).
pub fn is_volume(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".nii") || lower.ends_with(".nii.gz")
}

/// Organizes `files` (one collection's unclaimed `.nii`/`.nii.gz` files) as the dataset `slug`,
/// titled after the collection `name`; `None` when none of them is placed. Only files whose
/// header reads as NIfTI-1, NIfTI-2 (or the Analyze layout) count: anything else named `.nii`
/// stays in `_archives/` only.
pub fn organize_nifti(
    slug: &str,
    name: &str,
    files: &[PoolFile],
    content: &(dyn ContentSource + Sync),
) -> Option<Dataset> {
    use rayon::prelude::*;
    let files: Vec<PoolFile> = files
        .par_iter()
        .filter(|f| {
            let head = content.read_head(f.id, crate::organize::transform::VOLUME_HEAD);
            head.ok().and_then(|h| crate::organize::transform::volume_header(&h)).is_some()
        })
        .cloned()
        .collect();
    if files.is_empty() {
        return None;
    }
    let mut p = crate::profile::parse("src/niftitree.toml", PROFILE).expect("the generic NIfTI profile is valid");
    p.slug = slug.to_string();
    p.title = format!("NIfTI volumes of {name}");
    organize(&[p], &files, content).pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::organize::tests::Mem;

    fn pool(paths: &[&str]) -> Mem {
        Mem::in_archive(
            "vols.zip",
            paths.iter().enumerate().map(|(i, p)| {
                let bytes = if p.contains("fake") {
                    b"not a volume, just named like one".repeat(20)
                } else {
                    crate::fixtures::nifti(&[4, 3, 2], &[1.0, 1.0, 2.5], i as u64, p.ends_with(".gz"))
                };
                (p.to_string(), bytes)
            }),
        )
    }

    #[test]
    fn bids_folders_and_top_level_volumes() {
        let mem = pool(&[
            "ds001/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
            "ds001/sub-01/ses-1/func/sub-01_ses-1_bold.nii.gz",
            "ds001/sub-02/anat/sub-02_T1w.nii",
            "cases/case7/flair.nii.gz",
            "lone.NII",
            "cases/case8/fake.nii",
        ]);
        let files: Vec<PoolFile> = mem.0.iter().map(|(f, _)| f.clone()).collect();
        assert!(files.iter().all(|f| is_volume(&f.path)));
        assert!(!is_volume("x.nii.gz.txt") && !is_volume("img.png"));
        let d = organize_nifti("vols", "vols.zip", &files, &mem).unwrap();
        assert_eq!(d.slug, "vols");
        let paths: Vec<&str> = d.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "case7/flair/flair.nii.gz",
                "lone/lone/lone.NII",
                "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
                "sub-01/ses-1/func/sub-01_ses-1_bold.nii.gz",
                "sub-02/sub-02_T1w/sub-02_T1w.nii",
            ]
        );
        let meta: Value = serde_json::from_slice(
            &d.generated.iter().find(|g| g.rel_path == "case7/flair/metadata.json").unwrap().bytes,
        )
        .unwrap();
        assert_eq!(meta["shape"], json!([4, 3, 2]));
        assert_eq!(meta["voxel_size"], json!([1.0, 1.0, 2.5]));
        assert_eq!(meta["source"]["flair.nii.gz"], json!({"archive": "vols.zip", "path": "cases/case7/flair.nii.gz"}));
        let ds: Value =
            serde_json::from_slice(&d.generated.iter().find(|g| g.rel_path == "dataset.json").unwrap().bytes).unwrap();
        assert_eq!(ds["title"], "NIfTI volumes of vols.zip");
        assert_eq!(ds["counts"], json!({"patients": 4, "studies": 4, "files": 5}));
    }
}

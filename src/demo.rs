//! `medfs demo`: writes a small MURA-like zip and a ChestX-ray14-like tar.gz plus label CSV,
//! mounts them, and prints the tree, so a new user sees medfs work with no download.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::fixtures::{Entry, ZipMethod, entry, png_of, write_tar_gz, write_zip};

/// Pixels of a demo image: xorshift noise in a narrow gray band (64..128), so the PNGs stay small
/// and look like film grain.
fn pixels(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).max(1);
    (0..width * height)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0x3f) as u8 + 64
        })
        .collect()
}

/// A grayscale PNG of demo pixels, so image viewers open demo files.
fn png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    png_of(width, height, 0, &pixels(width, height, seed))
}

/// Generates the demo download in `dir/download`, mounts it at `dir/mnt`, prints the tree.
pub fn run(dir: &Path) -> Result<()> {
    let download = dir.join("download");
    let mnt = dir.join("mnt");
    let exe = std::env::current_exe()?;
    if mnt.exists() {
        let _ = Command::new(&exe).arg("unmount").arg(&mnt).output();
    }
    std::fs::create_dir_all(&download).with_context(|| download.display().to_string())?;
    std::fs::create_dir_all(&mnt).with_context(|| mnt.display().to_string())?;

    let mut mura: Vec<Entry> = vec![entry("MURA-v1.1/", Vec::new())];
    let mut csv = String::new();
    for (p, (kind, study, label)) in
        [("XR_WRIST", 1, "positive"), ("XR_SHOULDER", 1, "negative"), ("XR_HAND", 2, "positive")].iter().enumerate()
    {
        let split = if p < 2 { "train" } else { "valid" };
        let folder = format!("MURA-v1.1/{split}/{kind}/patient{:05}/study{study}_{label}/", p + 1);
        for i in 1..=2 {
            mura.push(entry(&format!("{folder}image{i}.png"), png(64, 64, (p * 10 + i) as u32)));
        }
        csv.push_str(&format!("{folder},{}\n", (*label == "positive") as u8));
    }
    mura.push(entry("MURA-v1.1/train_labeled_studies.csv", csv.into_bytes()));
    // Written once: rewriting them would (rightly) invalidate their persistent indexes.
    let fresh = |name: &str| !download.join(name).exists();
    if fresh("MURA-v1.1.zip") {
        write_zip(&download.join("MURA-v1.1.zip"), &mura, ZipMethod::Deflated)?;
    }

    let mut nih = Vec::new();
    let mut entries =
        String::from("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n");
    for (i, finding) in ["Cardiomegaly", "No Finding", "Effusion|Mass"].iter().enumerate() {
        let name = format!("{:08}_000.png", i + 1);
        nih.push(entry(&format!("images/{name}"), png(96, 96, 100 + i as u32)));
        entries.push_str(&format!("{name},{finding},0,{},{},M,PA\n", i + 1, 40 + i));
    }
    if fresh("images_001.tar.gz") {
        write_tar_gz(&download.join("images_001.tar.gz"), &nih)?;
    }
    if fresh("Data_Entry_2017.csv") {
        let path = download.join("Data_Entry_2017.csv");
        std::fs::write(&path, entries).with_context(|| path.display().to_string())?;
    }

    let status = Command::new(&exe).arg("mount").arg(&download).arg(&mnt).status()?;
    if !status.success() {
        bail!("demo mount failed");
    }
    println!("Demo download written to {}; mounted at {}:\n", download.display(), mnt.display());
    print_tree(&mnt, 0)?;
    println!(
        "\nBrowse it with any tool, e.g.:\n  ls -R {m}\n  python3 -c \"import PIL.Image as I; print(I.open('{m}/_archives/MURA-v1.1.zip/MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png').size)\"\nUnmount with:\n  medfs unmount {m}   (or: cargo run --release -- unmount {m})",
        m = mnt.display()
    );
    Ok(())
}

fn print_tree(dir: &Path, depth: usize) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = e.metadata()?;
        let name = e.file_name();
        if meta.is_dir() {
            println!("{}{}/", "  ".repeat(depth), name.to_string_lossy());
            print_tree(&e.path(), depth + 1)?;
        } else {
            println!("{}{}  ({} bytes)", "  ".repeat(depth), name.to_string_lossy(), meta.len());
        }
    }
    Ok(())
}

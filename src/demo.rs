//! `medfs demo`: writes a small MURA-like zip and a ChestX-ray14-like tar.gz plus label CSV,
//! mounts them, and prints the tree, so a new user sees medfs work with no download.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};

/// A tiny valid grayscale PNG of noise-ish pixels, so image viewers open demo files.
pub fn png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut raw = Vec::new();
    let mut x = seed.wrapping_mul(2654435761).max(1);
    // Each row is its PNG filter byte (none) then its pixels: not a run of one value.
    #[allow(clippy::same_item_push)]
    for _ in 0..height {
        raw.push(0);
        for _ in 0..width {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            raw.push((x & 0x3f) as u8 + 64);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&raw).expect("in memory");
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z.finish().expect("in memory"));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Writes a zip of `(name, bytes)` with deflate (stored for names ending in `/`).
pub fn write_zip(path: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let is_dir = name.ends_with('/');
        let (method, body) = if is_dir {
            (0u16, Vec::new())
        } else {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(data)?;
            (8u16, e.finish()?)
        };
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&(3u16 << 8 | 20).to_le_bytes());
            }
            for v in [20u16, 1 << 11, method, 0, 0x5821] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, body.len() as u32, data.len() as u32] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                let mode: u32 = if is_dir { 0o40755 } else { 0o100644 };
                for v in [0u16, 0, 0] {
                    h.extend_from_slice(&v.to_le_bytes());
                }
                h.extend_from_slice(&(mode << 16).to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend_from_slice(&header(0x04034b50, false));
        out.extend_from_slice(&body);
        central.extend_from_slice(&header(0x02014b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    for v in [0u16, 0, files.len() as u16, files.len() as u16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).with_context(|| path.display().to_string())
}

/// Writes a gzip-compressed ustar archive of `(name, bytes)`.
pub fn write_tar_gz(path: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut tar = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, 0o644);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_500_000_000);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        tar.extend_from_slice(&h);
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar)?;
    std::fs::write(path, gz.finish()?).with_context(|| path.display().to_string())
}

/// Generates the demo download in `dir/download`, mounts it at `dir/mnt`, prints the tree.
pub fn run(dir: &Path) -> Result<()> {
    let download = dir.join("download");
    let mnt = dir.join("mnt");
    let exe = std::env::current_exe()?;
    if mnt.exists() {
        let _ = Command::new(&exe).arg("unmount").arg(&mnt).output();
    }
    std::fs::create_dir_all(&download)?;
    std::fs::create_dir_all(&mnt)?;

    let mut mura = vec![("MURA-v1.1/".to_string(), Vec::new())];
    let mut csv = String::new();
    for (p, (kind, study, label)) in
        [("XR_WRIST", 1, "positive"), ("XR_SHOULDER", 1, "negative"), ("XR_HAND", 2, "positive")].iter().enumerate()
    {
        let split = if p < 2 { "train" } else { "valid" };
        let folder = format!("MURA-v1.1/{split}/{kind}/patient{:05}/study{study}_{label}/", p + 1);
        for i in 1..=2 {
            mura.push((format!("{folder}image{i}.png"), png(64, 64, (p * 10 + i) as u32)));
        }
        csv.push_str(&format!("{folder},{}\n", (*label == "positive") as u8));
    }
    mura.push(("MURA-v1.1/train_labeled_studies.csv".into(), csv.into_bytes()));
    // Written once: rewriting them would (rightly) invalidate their persistent indexes.
    let fresh = |name: &str| !download.join(name).exists();
    if fresh("MURA-v1.1.zip") {
        write_zip(&download.join("MURA-v1.1.zip"), &mura)?;
    }

    let mut nih = Vec::new();
    let mut entries =
        String::from("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n");
    for (i, finding) in ["Cardiomegaly", "No Finding", "Effusion|Mass"].iter().enumerate() {
        let name = format!("{:08}_000.png", i + 1);
        nih.push((format!("images/{name}"), png(96, 96, 100 + i as u32)));
        entries.push_str(&format!("{name},{finding},0,{},{},M,PA\n", i + 1, 40 + i));
    }
    if fresh("images_001.tar.gz") {
        write_tar_gz(&download.join("images_001.tar.gz"), &nih)?;
    }
    if fresh("Data_Entry_2017.csv") {
        std::fs::write(download.join("Data_Entry_2017.csv"), entries)?;
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

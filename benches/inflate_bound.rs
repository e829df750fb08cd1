//! The decoding bound for bench/run.sh (driven by bench/bounds.py): zip members read with
//! positioned reads and inflated by the decoder medfs uses (flate2 on zlib-rs), no FUSE, on a
//! given number of threads. No FUSE filesystem that must inflate these members here reads them
//! faster than this.
//!
//! `cargo bench --bench inflate_bound -- ARCHIVE JOBS THREADS`: JOBS has one member a line,
//! `offset compressed_size method size crc32` (offset of the compressed data); prints
//! `{"files_s": F, "bad": B}`.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [archive, jobs, threads] = &args[..] else {
        eprintln!("usage: inflate_bound ARCHIVE JOBS THREADS");
        std::process::exit(2);
    };
    let file = File::open(archive).expect("archive");
    let jobs: Vec<[u64; 5]> = std::fs::read_to_string(jobs)
        .expect("jobs file")
        .lines()
        .map(|l| {
            let v: Vec<u64> = l.split_whitespace().map(|x| x.parse().expect("a number")).collect();
            [v[0], v[1], v[2], v[3], v[4]]
        })
        .collect();
    let threads: usize = threads.parse().expect("threads");
    let next = AtomicUsize::new(0);
    let bad = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&[offset, csize, method, size, crc]) = jobs.get(i) else { break };
                    let mut packed = vec![0u8; csize as usize];
                    file.read_exact_at(&mut packed, offset).expect("read");
                    let data = if method == 8 {
                        let mut out = Vec::with_capacity(size as usize);
                        flate2::read::DeflateDecoder::new(&packed[..]).read_to_end(&mut out).expect("inflate");
                        out
                    } else {
                        packed
                    };
                    if data.len() as u64 != size || u64::from(crc32fast::hash(&data)) != crc {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let el = started.elapsed().as_secs_f64();
    println!("{{\"files_s\": {}, \"bad\": {}}}", jobs.len() as f64 / el, bad.load(Ordering::Relaxed));
}

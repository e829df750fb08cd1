//! The `medfs` binary: parse the command line, run it, report errors on one line.

use clap::Parser;

fn main() {
    tune_malloc();
    let cli = medfs::cli::Cli::parse();
    if let Err(e) = medfs::run::run(cli) {
        eprintln!("medfs: {e:#}");
        std::process::exit(1);
    }
}

/// The cache budget only bounds the daemon if freed memory goes back to the system. glibc's
/// malloc raises its mmap threshold after the first large free, after which 1 MiB blocks come
/// from per-thread arenas that fragment and are never returned (measured: 338 MiB RSS at a
/// 64 MiB budget). A fixed threshold keeps every buffer of 128 KiB or more (decoded blocks, seek
/// point spans, decoder buffers) in its own mapping, returned to the system when freed, and
/// fewer arenas keep the small allocations of sixteen FUSE threads from spreading out.
fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

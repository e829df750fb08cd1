//! The `medfs` binary: parse the command line, run it, report errors on one line.

use clap::Parser;

// Building a tree of hundreds of thousands of names and serving 16 FUSE threads is allocation
// bound; glibc's malloc spent ~40% of a NIH-scale mount in malloc/free and keeps per-thread
// arenas that inflate the daemon's RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = medfs::cli::Cli::parse();
    if let Err(e) = medfs::run::run(cli) {
        eprintln!("medfs: {e:#}");
        std::process::exit(1);
    }
}

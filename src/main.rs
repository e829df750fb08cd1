//! The `medfs` binary: parse the command line, run it, report errors on one line.

use clap::Parser;

fn main() {
    let cli = medfs::cli::Cli::parse();
    if let Err(e) = medfs::run::run(cli) {
        eprintln!("medfs: {e:#}");
        std::process::exit(1);
    }
}

//! The command line: what a user can type, parsed and checked, nothing more.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// medfs: mount medical-imaging dataset downloads read-only, lazily, as one tree.
#[derive(Parser, Debug)]
#[command(
    name = "medfs",
    version,
    about,
    long_about = None,
    after_help = "Example:\n  medfs mount ~/Downloads/MURA-v1.1.zip /mnt/med && ls /mnt/med/mura\n  \
                  medfs help mount    # each command's options and an example"
)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mount SOURCE... at MOUNTPOINT (returns once the mount answers; -f stays attached).
    #[command(
        override_usage = "medfs mount [OPTIONS] SOURCE... MOUNTPOINT",
        after_help = "Example:\n  medfs mount ~/Downloads/MURA-v1.1.zip ~/Downloads/ChestXray-NIHCC/ /mnt/med\n  \
                      ls /mnt/med/mura/patient00001/\n  medfs unmount /mnt/med"
    )]
    Mount(MountArgs),
    /// Unmount a medfs mount (also cleans up a mount left dead by a killed daemon).
    #[command(alias = "umount", after_help = "Example:\n  medfs unmount /mnt/med")]
    Unmount {
        /// The mountpoint.
        mountpoint: PathBuf,
    },
    /// Print the virtual tree without mounting (no FUSE needed).
    #[command(
        override_usage = "medfs ls [OPTIONS] SOURCE... [PATH]",
        after_help = "Example:\n  medfs ls ~/Downloads/MURA-v1.1.zip mura/patient00001"
    )]
    Ls {
        /// Sources, optionally followed by a PATH inside the tree.
        #[arg(required = true, num_args = 1.., value_name = "ARG")]
        args: Vec<PathBuf>,
        /// Tree options.
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// Write one virtual file to stdout without mounting.
    #[command(
        override_usage = "medfs cat [OPTIONS] SOURCE... PATH",
        after_help = "Example:\n  medfs cat ~/Downloads/MURA-v1.1.zip mura/labels.csv | head"
    )]
    Cat {
        /// Sources followed by the PATH of the file inside the tree.
        #[arg(required = true, num_args = 2.., value_name = "ARG")]
        args: Vec<PathBuf>,
        /// Tree options.
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// Build or refresh the persistent index of the sources ahead of time.
    #[command(after_help = "Example:\n  medfs index ~/Downloads/")]
    Index {
        /// Sources.
        #[arg(required = true, num_args = 1..)]
        sources: Vec<PathBuf>,
        /// Tree options.
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// List the dataset profiles medfs knows.
    #[command(after_help = "Example:\n  medfs datasets --profiles ~/my-profiles/")]
    Datasets {
        /// More dataset profiles (*.toml) to validate and list.
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// Generate a small demo download, mount it, and show the tree.
    #[command(after_help = "Example:\n  medfs demo --dir /tmp/medfs-demo")]
    Demo {
        /// Where to put the demo files and mountpoint.
        #[arg(long, default_value = "/tmp/medfs-demo")]
        dir: PathBuf,
    },
    /// Print a shell completion script for medfs to stdout.
    #[command(after_help = "Example:\n  \
                  medfs completions bash > ~/.local/share/bash-completion/completions/medfs\n  \
                  medfs completions zsh > ~/.zfunc/_medfs    # with fpath+=~/.zfunc before compinit\n  \
                  medfs completions fish > ~/.config/fish/completions/medfs.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options shared by everything that builds a tree.
#[derive(Args, Debug, Clone)]
pub struct TreeArgs {
    /// Refuse damaged archives instead of mounting what can be read.
    #[arg(long)]
    pub strict: bool,
    /// Show symlinks whose target leaves their archive (verbatim) instead of hiding them.
    #[arg(long)]
    pub keep_outside_symlinks: bool,
    /// Memory for decompressed data (e.g. 512M, 2G).
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    pub cache_size: usize,
    /// Where persistent indexes live (default: $XDG_CACHE_HOME/medfs/index).
    #[arg(long)]
    pub index_dir: Option<PathBuf>,
    /// Neither load nor save persistent indexes (list every archive from scratch).
    #[arg(long)]
    pub no_index: bool,
    /// Disk space for decoded blocks that are costly to decode again (a single-block xz or zstd
    /// stream), shared by every mount, evicted least-recently-used (e.g. 5G; 0 disables it).
    /// Default: 10% of the free space of its filesystem, at most 20 GiB.
    #[arg(long, value_parser = parse_size)]
    pub disk_cache_size: Option<usize>,
    /// Where the disk cache lives (default: $XDG_CACHE_HOME/medfs/blocks).
    #[arg(long)]
    pub disk_cache_dir: Option<PathBuf>,
    /// Use no disk cache (same as --disk-cache-size 0).
    #[arg(long)]
    pub no_disk_cache: bool,
    /// More dataset profiles (*.toml); one with the slug of a built-in profile replaces it.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    /// Show only the raw view `_archives/` (no dataset folders, no DICOM header scan).
    #[arg(long)]
    pub no_datasets: bool,
    /// Show no derived files (PNGs of LJPEG and raw images, masks, previews: README "Derived
    /// files") beside the originals in the dataset folders.
    #[arg(long)]
    pub no_derived: bool,
    /// How deep archives inside archives are opened (a bundle zip holding a 7z is depth 1);
    /// 0 shows nested archives as plain files.
    #[arg(long, default_value_t = crate::pool::DEFAULT_MAX_DEPTH, value_name = "N")]
    pub max_depth: u32,
    /// Password of encrypted archives (7z); repeat to try several in order, then
    /// $MEDFS_PASSWORD, then the passwords dataset profiles publish.
    #[arg(long = "password", value_name = "PW")]
    pub passwords: Vec<String>,
}

/// `medfs mount` options.
#[derive(Args, Debug)]
pub struct MountArgs {
    /// Archives, loose files or folders, then the mountpoint.
    #[arg(required = true, num_args = 2.., value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Stay in the foreground (Ctrl-C unmounts).
    #[arg(short, long)]
    pub foreground: bool,
    /// FUSE worker threads (the default serves a DataLoader with 8 workers without queueing).
    #[arg(long, default_value_t = 16)]
    pub threads: usize,
    /// Let other users read the mount (needs user_allow_other in /etc/fuse.conf unless root).
    #[arg(long)]
    pub allow_other: bool,
    /// Log file of the daemon (default: $XDG_CACHE_HOME/medfs/medfs.log); with -f, the log
    /// goes to this file as well as to the terminal (without it, to the terminal only).
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Tree options.
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// Parses `512M`, `2G`, `1048576`, `64k` (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s, 1u64),
        Some((i, _)) => {
            let unit = s[i..].trim().to_ascii_lowercase();
            let mult = match unit.trim_end_matches("ib").trim_end_matches('b') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "t" => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use K, M, G)")),
            };
            (&s[..i], mult)
        }
    };
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {s:?}"))?;
    n.checked_mul(mult).and_then(|v| usize::try_from(v).ok()).ok_or_else(|| format!("size too large: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
    }
}

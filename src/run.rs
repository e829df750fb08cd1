//! Wiring: turns a parsed command line into a pool, a core and (for `mount`) a FUSE session;
//! daemonizing (fork first, then build, mount and report ready over a pipe), signals, and
//! mountpoint checks live here. System calls go through nix.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, umount2};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, setsid};

use crate::cli::{Cli, Command, MountArgs, TreeArgs};
use crate::diskcache;
use crate::fs::{FileKind, MedFs};
use crate::fuse::{self, MountConfig};
use crate::pool::{Pool, PoolOptions};
use crate::tree::TreeOptions;

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    init_logging(cli.verbose);
    match cli.command {
        Command::Mount(args) => mount(args),
        Command::Unmount { mountpoint } => unmount(&mountpoint),
        Command::Ls { args, tree } => ls(&args, &tree),
        Command::Cat { args, tree } => cat(&args, &tree),
        Command::Index { sources, tree } => index(&sources, &tree),
        Command::Datasets { profiles } => datasets(profiles.as_deref()),
        Command::Demo { dir } => crate::demo::run(&dir),
        Command::Completions { shell } => completions(shell),
    }
}

/// Writes the completion script for `shell` to stdout. Made in memory first (the generator
/// panics on a failed write); a reader that stops early (`| head`) is no error.
fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "medfs", &mut script);
    match io::stdout().write_all(&script) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing the completion script"),
        _ => Ok(()),
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("medfs={level},fuser=error")));
    // Logs go to fd 2, which a daemon points at its log file; a foreground mount with
    // --log-file copies them to `LOG_COPY` too.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| LogWriter).with_ansi(false).try_init();
}

/// The log file of a foreground mount given `--log-file` (set once, before the mount is built).
static LOG_COPY: std::sync::OnceLock<File> = std::sync::OnceLock::new();

/// Where log lines go: stderr, and `LOG_COPY` when set. A failed write to the copy is dropped
/// (the terminal still has the line; a full disk must not stop the mount).
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(mut file) = LOG_COPY.get() {
            let _ = file.write_all(buf);
        }
        io::stderr().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The disk cache the options ask for; a folder that cannot be made is a warning, not a failure
/// (the cache only saves work).
fn open_disk_cache(tree: &TreeArgs) -> Option<std::sync::Arc<diskcache::DiskCache>> {
    if tree.no_disk_cache || tree.disk_cache_size == Some(0) {
        return None;
    }
    let dir = tree.disk_cache_dir.clone().or_else(diskcache::default_dir)?;
    let capacity = tree.disk_cache_size.map_or_else(|| diskcache::default_capacity(&dir), |s| s as u64);
    if capacity == 0 {
        return None;
    }
    // Bounded so that a huge stale cache cannot keep a short-lived `medfs index` busy.
    match diskcache::DiskCache::open_and_sweep(dir, capacity, std::time::Duration::from_secs(2)) {
        Ok(cache) => Some(cache),
        Err(e) => {
            eprintln!("medfs: warning: disk cache disabled: {e}");
            None
        }
    }
}

/// Opens the sources and builds the core, printing warnings (damaged archives, skipped files).
fn open_core(sources: &[PathBuf], tree: &TreeArgs, progress: bool) -> Result<MedFs> {
    // Profiles' passwords first: they are tried when archives are listed, even with
    // --no-datasets (the raw view of an encrypted download is still worth reading). Only their
    // TOML is read here; they are compiled if the tree must be built.
    let published = crate::profile::published_passwords_raw(tree.profiles.as_deref())?;
    let env = std::env::var("MEDFS_PASSWORD").ok().filter(|p| !p.is_empty());
    let passwords_given = tree.passwords.len() + env.is_some() as usize;
    let passwords = passwords(&tree.passwords, env, published);
    let opts = PoolOptions {
        strict: tree.strict,
        progress,
        index_dir: tree.index_dir.clone(),
        no_index: tree.no_index,
        passwords,
        passwords_given,
        disk_cache: open_disk_cache(tree),
        max_depth: tree.max_depth,
    };
    let started = std::time::Instant::now();
    let pool = Pool::open(sources, tree.cache_size, &opts)?;
    tracing::info!("{} archives listed in {:.3} s", pool.archives.len(), started.elapsed().as_secs_f64());
    // A read-only or full index folder fails every archive's save the same way: say it once,
    // not once per archive (a folder of 200 zips would bury every other warning).
    let (unsaved, others): (Vec<&String>, Vec<&String>) =
        pool.warnings.iter().partition(|w| w.contains(": index not saved ("));
    for w in others {
        eprintln!("medfs: {w}");
    }
    match unsaved.as_slice() {
        [] => {}
        [one] => eprintln!("medfs: {one}"),
        [first, rest @ ..] => eprintln!("medfs: {first} (and {} more archives not saved either)", rest.len()),
    }
    let opts = TreeOptions {
        keep_outside_symlinks: tree.keep_outside_symlinks,
        datasets: !tree.no_datasets,
        derived: !tree.no_datasets && !tree.no_derived,
    };
    // The persisted tree is keyed by the profiles' texts (build.rs): a warm mount compiles none.
    let (tree, reader) = if tree.no_datasets {
        crate::build::parts(pool, opts, &[])
    } else {
        let dir = tree.profiles.as_deref();
        let digest = crate::profile::texts_digest(dir)?;
        crate::build::parts_lazy(pool, opts, &digest, || load_profiles(dir))?
    };
    let fs = MedFs::from_parts(tree, reader);
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    tracing::info!(
        "memory: cache budget {:.1} MiB (--cache-size: decoded data, decoder and seek-point state); \
         outside it, tree {:.1} MiB ({} names) and member table {:.1} MiB",
        mib(fs.pool().cache.capacity()),
        mib(fs.tree().memory_bytes()),
        fs.tree().len(),
        mib(fs.pool().member_table_bytes())
    );
    // Never silent: what was recognized, and (with -v) why the rest was not.
    let report = if opts.datasets { fs.tree().report.summary() } else { Vec::new() };
    for line in report {
        eprintln!("medfs: {line}");
    }
    if tracing::enabled!(tracing::Level::INFO) && opts.datasets {
        for line in fs.tree().report.details() {
            eprintln!("medfs:   {line}");
        }
    }
    for w in fs.tree().warnings.iter().take(20) {
        eprintln!("medfs: warning: {w}");
    }
    if fs.tree().warnings.len() > 20 {
        eprintln!("medfs: warning: ... and {} more (see -v)", fs.tree().warnings.len() - 20);
    }
    Ok(fs)
}

/// Passwords in the order they are tried: those given with `--password`, then
/// `$MEDFS_PASSWORD`, then those the profiles publish (`passwords` in a profile), each once.
fn passwords(given: &[String], env: Option<String>, published: Vec<String>) -> Vec<String> {
    let mut out = given.to_vec();
    out.extend(env.filter(|p| !p.is_empty()));
    for p in published {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The built-in profiles, plus (replacing same-slug built-ins) those of `dir`.
fn load_profiles(dir: Option<&Path>) -> Result<Vec<crate::profile::Profile>> {
    let builtin = crate::profile::builtin();
    Ok(match dir {
        Some(dir) => crate::profile::merge(builtin, crate::profile::load_dir(dir)?),
        None => builtin,
    })
}

fn datasets(dir: Option<&Path>) -> Result<()> {
    for p in load_profiles(dir)? {
        println!("{:<14} {}  ({})", p.slug(), p.title(), p.file());
    }
    Ok(())
}

/// `ls`/`cat` take SOURCE... [PATH]: the last argument is a PATH unless it exists on disk.
fn split_sources(args: &[PathBuf], path_required: bool) -> (Vec<PathBuf>, Vec<u8>) {
    let last = args.last().expect("clap requires one");
    if path_required || (args.len() > 1 && !last.exists()) {
        (args[..args.len() - 1].to_vec(), last.as_os_str().as_bytes().to_vec())
    } else {
        (args.to_vec(), Vec::new())
    }
}

fn ls(args: &[PathBuf], tree: &TreeArgs) -> Result<()> {
    let (sources, path) = split_sources(args, false);
    let fs = open_core(&sources, tree, true)?;
    let entries = fs.walk(&path).map_err(|e| anyhow!("{}: {e}", String::from_utf8_lossy(&path)))?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    for (p, attr) in entries {
        let shown = if p.is_empty() { b".".to_vec() } else { p };
        let _ = out.write_all(&shown);
        let _ = match attr.kind {
            FileKind::Dir => out.write_all(b"/\n"),
            FileKind::File => writeln!(out, "\t{}", attr.size),
            FileKind::Symlink => {
                let target = fs.readlink(attr.ino).unwrap_or_default();
                out.write_all(b" -> ").and_then(|()| out.write_all(target)).and_then(|()| out.write_all(b"\n"))
            }
        };
    }
    out.flush().ok();
    Ok(())
}

fn cat(args: &[PathBuf], tree: &TreeArgs) -> Result<()> {
    let (sources, path) = split_sources(args, true);
    let fs = open_core(&sources, tree, true)?;
    let shown = String::from_utf8_lossy(&path).into_owned();
    let ino = fs.resolve(&path).map_err(|e| anyhow!("{shown}: {e}"))?;
    let size = fs.getattr(ino)?.size;
    let mut out = io::stdout().lock();
    let mut buf = Vec::new();
    let mut offset = 0;
    while offset < size {
        fs.read(ino, offset, 1 << 20, &mut buf).map_err(|e| anyhow!("{shown}: {e}"))?;
        if buf.is_empty() {
            break;
        }
        if let Err(e) = out.write_all(&buf) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        offset += buf.len() as u64;
    }
    Ok(())
}

fn index(sources: &[PathBuf], tree: &TreeArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let fs = open_core(sources, tree, true)?;
    for a in fs.pool().archives.iter().filter(|a| a.file.is_some()) {
        let how = if a.from_index { "from its index" } else { "listed and indexed" };
        println!(
            "{}: {} members, {how}, read {} bytes of the archive{}",
            a.display,
            a.members.len(),
            a.listing_bytes_read,
            if a.damaged { " (damaged)" } else { "" }
        );
    }
    println!("{:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Is `path` itself a mountpoint (per /proc/self/mountinfo)?
fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(path) else { return false };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    // Field 5 is the mount point, with spaces etc. escaped as octal.
    let want = canon.as_os_str().as_bytes().iter().fold(String::new(), |mut s, &b| {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => s.push_str(&format!("\\{b:03o}")),
            _ => s.push(b as char),
        }
        s
    });
    info.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A mountpoint whose daemon died answers ENOTCONN ("Transport endpoint is not connected").
fn is_dead_mount(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.kind() == io::ErrorKind::NotConnected)
}

/// Unmounts with umount(2) as root, else with fusermount; `lazy` detaches a busy or dead mount.
fn do_unmount(path: &Path, lazy: bool) -> io::Result<()> {
    match umount2(path, if lazy { MntFlags::MNT_DETACH } else { MntFlags::empty() }) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            let flags = if lazy { "-uz" } else { "-u" };
            for tool in ["fusermount3", "fusermount"] {
                if let Ok(status) = std::process::Command::new(tool).arg(flags).arg(path).status() {
                    return if status.success() {
                        Ok(())
                    } else {
                        Err(io::Error::other(format!("{tool} {flags} failed")))
                    };
                }
            }
            Err(Errno::EPERM.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn unmount(mountpoint: &Path) -> Result<()> {
    let shown = mountpoint.display();
    if is_dead_mount(mountpoint) {
        do_unmount(mountpoint, true).with_context(|| format!("{shown}: cannot clean up dead mount"))?;
        eprintln!("medfs: {shown}: cleaned up a mount whose daemon had died");
        return Ok(());
    }
    if !is_mountpoint(mountpoint) {
        bail!("{shown}: not mounted");
    }
    match do_unmount(mountpoint, false) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {
            bail!("{shown}: busy (a shell or program has files open there); close them and retry")
        }
        Err(e) => Err(anyhow!("{shown}: cannot unmount: {e}")),
    }
}

fn check_mountpoint(mnt: &Path) -> Result<()> {
    let shown = mnt.display();
    if is_dead_mount(mnt) {
        eprintln!("medfs: {shown}: cleaning up a mount left by a daemon that died");
        do_unmount(mnt, true).with_context(|| format!("{shown}: cannot clean up dead mount"))?;
    }
    let meta = std::fs::metadata(mnt).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => anyhow!("mountpoint {shown} does not exist (create it with: mkdir -p {shown})"),
        _ => anyhow!("mountpoint {shown}: {e}"),
    })?;
    if !meta.is_dir() {
        bail!("mountpoint {shown} is not a directory");
    }
    if is_mountpoint(mnt) {
        bail!("mountpoint {shown} is already mounted (medfs unmount {shown} first)");
    }
    if std::fs::read_dir(mnt).with_context(|| format!("mountpoint {shown}"))?.next().is_some() {
        bail!("mountpoint {shown} is not empty");
    }
    if !Path::new("/dev/fuse").exists() {
        bail!("/dev/fuse is missing: load the fuse module (modprobe fuse) or install fuse3");
    }
    Ok(())
}

fn default_log_file() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("medfs").join("medfs.log")
}

fn open_log(log_path: &Path) -> Result<File> {
    if let Some(dir) = log_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("log file {}", log_path.display()))
}

/// What the daemon tells the waiting parent over the readiness pipe: `READY`, or `FAILED` then
/// the error text the parent prints as its own. End of file without either: the daemon died.
const READY: &[u8] = b"ready";
const FAILED: &[u8] = b"error: ";

fn mount(args: MountArgs) -> Result<()> {
    let (mnt, sources) = args.paths.split_last().expect("clap requires two");
    check_mountpoint(mnt)?;
    let config = MountConfig { threads: args.threads, allow_other: args.allow_other };
    if args.foreground {
        if let Some(path) = &args.log_file {
            let _ = LOG_COPY.set(open_log(path)?);
        }
        let stop = Stop::start()?;
        let fs = open_core(sources, &args.tree, true)?;
        let session = stop.mount(fs, mnt, &config)?;
        tracing::info!("mounted {} in the foreground (pid {})", mnt.display(), std::process::id());
        return serve(session);
    }
    let log_path = args.log_file.clone().unwrap_or_else(default_log_file);
    let (ready_rx, ready_tx) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    // Listing, scanning and organizing start threads, and a child forked after them could find
    // the allocator or a lock held by a thread that does not exist in it: fork first, and let the
    // daemon build everything itself. Nothing before this point starts a thread (clap, logging
    // setup, the mountpoint checks); the check keeps it so.
    let threads = threads_in_process();
    if threads > 1 {
        bail!("internal error: {threads} threads running before the daemon is forked");
    }
    // SAFETY: this process runs one thread (checked just above), so the child is a whole copy of
    // it and may go on using the allocator, locks and the rest of std.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(ready_rx);
            daemon_child(sources, &args, mnt, &config, &log_path, File::from(ready_tx))
        }
        ForkResult::Parent { .. } => {
            drop(ready_tx);
            let mut msg = Vec::new();
            let _ = File::from(ready_rx).read_to_end(&mut msg);
            if msg == READY {
                return Ok(());
            }
            match msg.strip_prefix(FAILED) {
                Some(text) => bail!("{}", String::from_utf8_lossy(text).trim_end()),
                None => bail!("mount daemon exited before the mount was ready (see {})", log_path.display()),
            }
        }
    }
}

/// Threads of this process (Linux: one entry each under /proc/self/task).
fn threads_in_process() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// The forked daemon: builds the core and mounts it while its stderr is still the user's
/// terminal (progress bars, warnings and `-v` reports show there, as in the foreground), then
/// detaches: stdin and stdout to /dev/null, stderr to the log, a session of its own, and "ready"
/// to the parent, which exits 0 only then. Any error before that goes to the parent instead.
fn daemon_child(
    sources: &[PathBuf],
    args: &MountArgs,
    mnt: &Path,
    config: &MountConfig,
    log_path: &Path,
    mut ready: File,
) -> ! {
    let mounted = (|| {
        let stop = Stop::start()?;
        let fs = open_core(sources, &args.tree, true)?;
        let log = open_log(log_path)?;
        let session = stop.mount(fs, mnt, config)?;
        Ok::<_, anyhow::Error>((session, log))
    })();
    let (session, log) = match mounted {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.write_all(&[FAILED, format!("{e:#}").as_bytes()].concat());
            std::process::exit(1);
        }
    };
    detach(log);
    tracing::info!("mounted {} (pid {})", mnt.display(), std::process::id());
    // A parent killed meanwhile cannot be told; the mount serves all the same.
    let _ = ready.write_all(READY);
    drop(ready);
    let code = match serve(session) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    };
    std::process::exit(code)
}

/// Leaves the user's terminal: stdin and stdout to /dev/null, stderr (logs, panics) to `log`, and
/// a new session, so Ctrl-C in the parent's shell no longer reaches the daemon. Failures leave a
/// descriptor as it was: the daemon serves all the same.
fn detach(log: File) {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
    }
    let _ = dup2_stderr(&log);
    let _ = setsid();
}

fn mount_error(mnt: &Path, e: io::Error) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            anyhow!(
                "cannot mount at {}: permission denied (run as root, or install fuse3 for fusermount3)",
                mnt.display()
            )
        }
        _ => anyhow!("cannot mount at {}: {e}", mnt.display()),
    }
}

/// Runs the session until it is unmounted (by `fusermount3 -u`, `medfs unmount`, or a stop
/// signal taken by [`Stop`]'s thread).
fn serve(session: fuse::Session) -> Result<()> {
    session.run().context("FUSE session")?;
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP, from the start of a mount command to its end. They are blocked in
/// the first thread before any other thread exists (every thread started later, rayon's workers
/// included, inherits the mask, so no thread can be killed by one), and one thread takes them
/// with sigwait: before the mount exists it exits at once (nothing to clean up, so Ctrl-C stops
/// a long listing pass); once mounted it unmounts, detaching lazily if the mount is busy, so a
/// stop signal never leaves a dead mountpoint behind.
struct Stop {
    mounted: Arc<parking_lot::Mutex<Option<(fuse::Unmounter, PathBuf)>>>,
}

impl Stop {
    /// Blocks the stop signals and starts the thread that takes them. Call it before any other
    /// thread starts (after the daemon's fork).
    fn start() -> Result<Stop> {
        let mut set = SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(sig);
        }
        set.thread_block().context("blocking stop signals")?;
        let mounted: Arc<parking_lot::Mutex<Option<(fuse::Unmounter, PathBuf)>>> = Arc::default();
        let state = mounted.clone();
        std::thread::Builder::new().name("medfs-signals".into()).spawn(move || {
            let sig = match set.wait() {
                Ok(sig) => sig,
                Err(e) => {
                    tracing::error!("waiting for stop signals failed ({e}); Ctrl-C or kill will not unmount");
                    return;
                }
            };
            // Held by `mount` while the kernel mount is being made: a signal in that window waits
            // here and then finds the mount to undo.
            let mut state = state.lock();
            let Some((unmounter, mountpoint)) = state.as_mut() else {
                tracing::info!("signal {}: stopping before the mount exists", sig.as_str());
                std::process::exit(128 + sig as i32);
            };
            tracing::info!("signal {}: unmounting", sig.as_str());
            if let Err(e) = unmounter.unmount() {
                // Busy (a shell sits in it): detach it now rather than leave a dead mountpoint
                // behind when we exit; the kernel finishes the unmount when the last user leaves.
                tracing::warn!("unmount on signal {} failed ({e}); detaching lazily", sig.as_str());
                if let Err(e) = umount2(mountpoint.as_path(), MntFlags::MNT_DETACH) {
                    tracing::error!("lazy unmount of {} failed: {e}", mountpoint.display());
                }
                std::process::exit(1);
            }
        })?;
        Ok(Stop { mounted })
    }

    /// Mounts `fs` at `mnt`; from then on a stop signal unmounts it.
    fn mount(&self, fs: MedFs, mnt: &Path, config: &MountConfig) -> Result<fuse::Session> {
        let mut state = self.mounted.lock();
        let mut session = fuse::mount(Arc::new(fs), mnt, config).map_err(|e| mount_error(mnt, e))?;
        *state = Some((session.unmounter(), mnt.to_path_buf()));
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_passwords_come_after_the_users_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let write = |slug: &str, pw: &[&str]| {
            let list: Vec<String> = pw.iter().map(|p| format!("{p:?}")).collect();
            let text = format!(
                "title = \"t\"\npasswords = [{}]\n[[files]]\nrole = \"i\"\npath = 'x'\npatient = \"p\"\nstudy = \"s\"\n",
                list.join(", ")
            );
            std::fs::write(dir.path().join(format!("{slug}.toml")), text).unwrap();
        };
        write("a", &["open sesame", "mine"]);
        write("b", &[]);
        write("c", &["open sesame", "late"]);
        // The raw read gives what compiling every profile gives: built-ins first, then the user's.
        let raw = crate::profile::published_passwords_raw(Some(dir.path())).unwrap();
        let compiled = crate::profile::published_passwords(&load_profiles(Some(dir.path())).unwrap());
        assert_eq!(raw, compiled);
        assert!(raw.ends_with(&["open sesame".to_string(), "mine".to_string(), "late".to_string()]));
        let given = vec!["mine".to_string(), "first".to_string()];
        let all = passwords(&given, Some("env".into()), raw.clone());
        assert_eq!(all[..3], ["mine", "first", "env"]);
        assert_eq!(all.iter().filter(|p| *p == "mine").count(), 1, "each once");
        // An empty MEDFS_PASSWORD is no password.
        assert_eq!(passwords(&given, Some(String::new()), Vec::new()), ["mine", "first"]);
        // The built-in cervix profile publishes the stage-2 password; a user profile of its slug
        // without passwords replaces it.
        assert!(crate::profile::published_passwords_raw(None).unwrap().contains(&"byecervicalcancer".to_string()));
        write("cervix", &[]);
        assert!(
            !crate::profile::published_passwords_raw(Some(dir.path()))
                .unwrap()
                .contains(&"byecervicalcancer".to_string())
        );
        // A profile that is not TOML fails, naming its file.
        std::fs::write(dir.path().join("d.toml"), "title = ").unwrap();
        let e = crate::profile::published_passwords_raw(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("d.toml"), "{e}");
    }
}

//! The command line's comfort (issue 14 item 6): each command's `--help` ends with an example,
//! the completion scripts of bash, zsh and fish load in those shells and complete subcommands,
//! a missing SOURCE is said once with its path and what to do, and `mount -f --log-file F`
//! writes its log to F.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::CommandFactory;
use common::*;

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_commands_help_ends_with_an_example() {
    let cli = medfs::cli::Cli::command();
    let mut names: Vec<String> = cli.get_subcommands().map(|c| c.get_name().to_string()).collect();
    assert!(names.len() >= 8, "{names:?}");
    names.push(String::new()); // medfs --help itself
    for name in names {
        let (ok, help, err) = run(medfs().args(name.split_whitespace()).arg("--help"));
        assert!(ok, "medfs {name} --help: {err}");
        let last = help.trim_end().rsplit("\n\n").next().unwrap();
        assert!(last.starts_with("Example:\n  medfs "), "medfs {name} --help ends with:\n{last}");
        if !name.is_empty() {
            assert!(last.contains(&format!("medfs {name}")), "the example of {name} runs it:\n{last}");
        }
    }
}

/// `medfs completions SHELL`, checked to succeed.
fn script(shell: &str) -> String {
    let (ok, out, err) = run(medfs().args(["completions", shell]));
    assert!(ok && !out.is_empty(), "medfs completions {shell}: {err}");
    out
}

/// Runs `shell` with `args` (the shell missing fails the test with what to install).
fn shell(shell: &str, args: &[&str], script_file: &Path) -> String {
    let (ok, out, err) = run(Command::new(shell).args(args).env("SCRIPT", script_file));
    assert!(ok, "{shell} {args:?} (install {shell}; .ci/run does): {out}{err}");
    out
}

#[test]
fn completion_scripts_load_in_bash_zsh_and_fish_and_complete_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // bash: the completion function answers `medfs mo<TAB>` and `medfs completions <TAB>`.
    let bash = write("medfs.bash", script("bash"));
    let got = shell(
        "bash",
        &[
            "-c",
            r#"source "$SCRIPT" && complete -p medfs >/dev/null && COMP_WORDS=(medfs mo) COMP_CWORD=1 && _medfs medfs mo medfs && echo "${COMPREPLY[@]}" && COMP_WORDS=(medfs completions '') COMP_CWORD=2 && _medfs medfs '' completions && echo "${COMPREPLY[@]}""#,
        ],
        &bash,
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "mount", "bash: medfs mo<TAB>");
    for sh in ["bash", "zsh", "fish"] {
        assert!(lines[1].split(' ').any(|w| w == sh), "bash: medfs completions <TAB> offers {sh}: {}", lines[1]);
    }
    // zsh: the script parses and declares itself for medfs.
    let zsh = write("_medfs", script("zsh"));
    assert!(std::fs::read_to_string(&zsh).unwrap().starts_with("#compdef medfs"));
    shell("zsh", &["-n", zsh.to_str().unwrap()], &zsh);
    // fish: loaded, it completes `medfs mo` to mount (with its description) and `medfs un`.
    let fish = write("medfs.fish", script("fish"));
    let got = shell("fish", &["-c", "source $SCRIPT; complete -C 'medfs mo'; complete -C 'medfs un'"], &fish);
    assert!(got.lines().any(|l| l.starts_with("mount\t")), "fish: {got}");
    assert!(got.lines().any(|l| l.starts_with("unmount\t")), "fish: {got}");
    // An unknown shell is refused, naming the ones there are.
    let (ok, _, err) = run(medfs().args(["completions", "tcsh"]));
    assert!(!ok && err.contains("bash") && err.contains("zsh"), "{err}");
}

#[test]
fn a_missing_source_is_said_once_with_its_path_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("MURA-v1.1.zip");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = missing.to_str().unwrap();
    for args in [vec!["ls", m], vec!["mount", m, mnt.to_str().unwrap()], vec!["mount", "-f", m, mnt.to_str().unwrap()]]
    {
        let (ok, _, err) = run(medfs().args(&args));
        assert!(!ok, "{args:?} fails");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert_eq!(err.matches("No such file or directory").count(), 1, "{args:?}: said once: {err}");
        assert!(err.starts_with(&format!("medfs: {m}: ")), "{args:?}: names the path first: {err}");
        assert!(err.contains("check the path"), "{args:?}: says what to do: {err}");
        assert!(!is_mounted(&mnt));
    }
}

/// A foreground mount, killed and unmounted if the test fails before it stops.
struct Foreground(Child, std::path::PathBuf);

impl Drop for Foreground {
    fn drop(&mut self) {
        unmount(&self.1);
        if !wait_for(Duration::from_secs(10), || self.0.try_wait().ok().flatten().is_some()) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_foreground_mount_writes_its_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    make_zip(&zip, &[entry("d/x.txt", b"hello".to_vec())], ZipMethod::Deflated);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // In a folder that does not exist yet: it is made.
    let log = dir.path().join("logs/medfs.log");
    let child = medfs()
        .args(["-v", "mount", "-f"])
        .arg(&zip)
        .arg(&mnt)
        .arg("--log-file")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut fg = Foreground(child, mnt.clone());
    assert!(wait_for(Duration::from_secs(30), || is_mounted(&mnt)), "the foreground mount comes up");
    assert_eq!(std::fs::read(mnt.join("_archives/a.zip/d/x.txt")).unwrap(), b"hello");
    let text = std::fs::read_to_string(&log).expect("the log file exists");
    assert!(text.contains(&format!("mounted {} in the foreground", mnt.display())), "log: {text}");
    unmount(&mnt);
    assert!(wait_for(Duration::from_secs(10), || fg.0.try_wait().unwrap().is_some()), "-f returns when unmounted");
    let status = fg.0.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(fg.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("in the foreground"), "the terminal keeps the log too: {err}");
}

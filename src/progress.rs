//! Progress bars for long listing passes: shown on a terminal, silent otherwise.

use std::io::{self, IsTerminal, Read};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The set of bars of one listing run (none when disabled or stderr is not a terminal).
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Bars only when `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Progress {
        let multi = (wanted && io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        Progress { multi }
    }

    /// A byte-counting bar for one archive; a hidden one when disabled.
    pub fn add(&self, name: &str, total: u64) -> ProgressBar {
        let Some(multi) = &self.multi else { return ProgressBar::hidden() };
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{msg:30!} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
                .expect("static template"),
        );
        let short = name.rsplit('/').next().unwrap_or(name);
        bar.set_message(format!("indexing {short}"));
        bar
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

/// A reader that advances a progress bar by the bytes it reads.
pub struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R> Counted<R> {
    /// Counts `inner`'s bytes on `bar`.
    pub fn new(inner: R, bar: ProgressBar) -> Counted<R> {
        Counted { inner, bar }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

//! Progress of image transfers. The engine reports through [`Progress`]; the
//! CLI picks bars on a terminal, plain lines otherwise, or nothing (`-q`).
//! Everything goes to stderr: stdout is for the data (the image ID).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// What an image transfer tells about itself. Called from several threads.
pub trait Progress: Sync {
    /// A line such as "Trying to pull docker.io/library/alpine:latest...".
    fn message(&self, line: &str);
    /// A blob starts (size may be 0 when unknown).
    fn blob_start(&self, digest: &str, size: u64);
    /// `bytes` more bytes of the blob went by.
    fn blob_advance(&self, digest: &str, bytes: u64);
    /// The blob is done; `skipped` when it was already there.
    fn blob_done(&self, digest: &str, skipped: bool);
}

/// Reports nothing (`-q`).
pub struct Silent;

impl Progress for Silent {
    fn message(&self, _: &str) {}
    fn blob_start(&self, _: &str, _: u64) {}
    fn blob_advance(&self, _: &str, _: u64) {}
    fn blob_done(&self, _: &str, _: bool) {}
}

/// One line per event, as podman prints when stderr is not a terminal.
pub struct Lines;

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

impl Progress for Lines {
    fn message(&self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
    fn blob_start(&self, _: &str, _: u64) {}
    fn blob_advance(&self, _: &str, _: u64) {}
    fn blob_done(&self, digest: &str, skipped: bool) {
        let what = if skipped { "skipped: already exists" } else { "done" };
        let _ = writeln!(std::io::stderr().lock(), "Copying blob {} {what}", short(digest));
    }
}

/// Progress bars on a terminal (indicatif).
pub struct Bars {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars {
            multi: indicatif::MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bars {
    fn message(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    fn blob_start(&self, digest: &str, size: u64) {
        let bar = self.multi.add(indicatif::ProgressBar::new(size));
        let style = indicatif::ProgressStyle::with_template(
            "Copying blob {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(short(digest).to_string());
        if let Ok(mut m) = self.bars.lock() {
            m.insert(digest.to_string(), bar);
        }
    }

    fn blob_advance(&self, digest: &str, bytes: u64) {
        if let Ok(m) = self.bars.lock()
            && let Some(b) = m.get(digest)
        {
            b.inc(bytes);
        }
    }

    fn blob_done(&self, digest: &str, skipped: bool) {
        let bar = self.bars.lock().ok().and_then(|mut m| m.remove(digest));
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let what = if skipped { "skipped: already exists" } else { "done" };
        let _ = self.multi.println(format!("Copying blob {} {what}", short(digest)));
    }
}

/// The reporter a CLI verb should use.
pub fn for_cli(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Lines)
    }
}

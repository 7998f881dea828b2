//! Where output goes: data on stdout, messages on stderr. Every print in casco
//! goes through here.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

/// Writes a line of data to stdout; fails on a closed pipe so that the caller
/// stops (the top level turns a broken pipe into exit 0).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Sets the level from `--log-level` (error, warn, info, debug).
pub fn set_level(level: &str) -> anyhow::Result<()> {
    START.get_or_init(std::time::Instant::now);
    match level {
        "error" | "warn" | "info" => {}
        "debug" | "trace" => DEBUG.store(true, std::sync::atomic::Ordering::Relaxed),
        other => anyhow::bail!("invalid --log-level {other:?}: use error, warn, info or debug"),
    }
    Ok(())
}

/// With `--log-level debug`: one line on stderr with the time since start.
pub fn debug(what: impl FnOnce() -> String) {
    if DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        let t = START.get().map(|s| s.elapsed().as_secs_f64() * 1000.0).unwrap_or(0.0);
        let _ = writeln!(std::io::stderr().lock(), "DEBU[{t:8.3}ms] {}", what());
    }
}

/// A warning that does not stop the command.
pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "WARN: {msg}");
}

/// An informational message (waiting on a lock, progress).
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Prints an error the way the top level does, for per-item failures in loops.
pub fn error(err: &anyhow::Error) {
    let _ = writeln!(std::io::stderr().lock(), "Error: {err:#}");
}

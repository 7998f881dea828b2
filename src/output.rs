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

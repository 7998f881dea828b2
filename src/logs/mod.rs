//! Container logs in podman's "k8s-file" format (the CRI log format, as conmon
//! writes it): one file per container, one record per line,
//!
//! ```text
//! 2024-05-01T12:34:56.123456789Z stdout F hello world
//! <RFC 3339 time> <stdout|stderr> <F|P> <content>
//! ```
//!
//! `F` marks a full line (its "\n" is not stored); `P` a partial one, which the
//! next record(s) of the same stream continue. This module owns the three parts:
//! [`LogWriter`], used by the monitor (or a foreground `casco run`) to append what
//! the container prints; [`parse_record`], for one line; and [`read_logs`], which
//! serves `casco logs` (filters, `--tail`, `--follow`).
//!
//! Records are written with UTC times ("Z"); podman's conmon writes local
//! offsets ("+02:00"), and the parser accepts both, so logs written by either
//! can be read.

mod reader;
mod record;
mod watch;
mod writer;

pub use reader::{ReadOptions, read_logs};
pub use record::{LogRecord, Stream, parse_record};
pub use writer::LogWriter;

//! Exit codes, decided in one place.
//!
//! casco follows podman: 125 when casco itself fails, 126 when the container's
//! command cannot be invoked, 127 when it cannot be found, and otherwise the
//! container's own exit code (128+N for a death by signal N).

use std::fmt;

/// What a verb hands back when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The exit code to pass on, usually the container's.
    Code(u8),
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Code(c) => c,
        }
    }

    /// The status for a child's `wait` result: its code, or 128+signal.
    pub fn from_wait(code: Option<i32>, signal: Option<i32>) -> ExitStatus {
        let c = match (code, signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 125,
        };
        if c == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Code((c & 0xff) as u8)
        }
    }
}

/// Engine failure.
pub const ENGINE: u8 = 125;
/// The container's command exists but cannot be executed.
pub const CANNOT_INVOKE: u8 = 126;
/// The container's command does not exist.
pub const NOT_FOUND: u8 = 127;

/// An error that carries its own exit code. Found by downcasting the error chain
/// at the top, so any layer can attach one with `anyhow::Error::new(Coded ..)`.
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

impl Coded {
    pub fn new(code: u8, message: impl Into<String>) -> Coded {
        Coded {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error whose message was already printed (by a per-item loop, say); the top
/// level exits with its code and prints nothing more.
#[derive(Debug)]
pub struct AlreadyReported(pub u8);

impl fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for AlreadyReported {}

/// The exit code for an error: the first `Coded` or `AlreadyReported` in its
/// chain, else 125.
pub fn code_of(err: &anyhow::Error) -> u8 {
    // `downcast_ref` on the error itself also finds values attached with
    // `.context(..)`, which `chain()` shows only as Display text.
    if let Some(c) = err.downcast_ref::<Coded>() {
        return c.code;
    }
    if let Some(a) = err.downcast_ref::<AlreadyReported>() {
        return a.0;
    }
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        if let Some(a) = cause.downcast_ref::<AlreadyReported>() {
            return a.0;
        }
    }
    ENGINE
}

/// True when the error is a broken pipe on our own output (`casco ps | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_maps_like_a_shell() {
        assert_eq!(ExitStatus::from_wait(Some(0), None), ExitStatus::Success);
        assert_eq!(ExitStatus::from_wait(Some(3), None), ExitStatus::Code(3));
        assert_eq!(ExitStatus::from_wait(None, Some(9)), ExitStatus::Code(137));
    }

    #[test]
    fn coded_error_is_found_under_context() {
        let e = anyhow::Error::new(Coded::new(127, "not found")).context("starting x");
        assert_eq!(code_of(&e), 127);
        let e = anyhow::anyhow!("no such thing").context(Coded::new(1, "missing"));
        assert_eq!(code_of(&e), 1);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), 125);
    }
}

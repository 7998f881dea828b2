//! The attach socket of a detached container: a unix stream socket in the run
//! root over which the monitor sends output frames and receives input frames.
//!
//! A frame is one type byte, a big-endian u32 length, and the payload:
//! 1 stdout, 2 stderr, 3 exit (i32 code) from the monitor; 0 stdin data,
//! 4 close stdin, 5 resize (u16 rows, u16 cols) from a client.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdin(Vec<u8>),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
    CloseStdin,
    Resize(u16, u16),
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (t, payload): (u8, Vec<u8>) = match self {
            Frame::Stdin(d) => (0, d.clone()),
            Frame::Stdout(d) => (1, d.clone()),
            Frame::Stderr(d) => (2, d.clone()),
            Frame::Exit(c) => (3, c.to_be_bytes().to_vec()),
            Frame::CloseStdin => (4, Vec::new()),
            Frame::Resize(r, c) => (5, [r.to_be_bytes(), c.to_be_bytes()].concat()),
        };
        let mut v = Vec::with_capacity(5 + payload.len());
        v.push(t);
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(&payload);
        v
    }

    /// Reads one frame; `Ok(None)` at a clean end of stream.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 5];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > 1 << 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "attach frame too large"));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload)?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed attach frame");
        Ok(Some(match head[0] {
            0 => Frame::Stdin(payload),
            1 => Frame::Stdout(payload),
            2 => Frame::Stderr(payload),
            3 => Frame::Exit(i32::from_be_bytes(payload.try_into().map_err(|_| bad())?)),
            4 => Frame::CloseStdin,
            5 if payload.len() == 4 => Frame::Resize(
                u16::from_be_bytes([payload[0], payload[1]]),
                u16::from_be_bytes([payload[2], payload[3]]),
            ),
            _ => return Err(bad()),
        }))
    }
}

/// One connected client, as the monitor sees it.
pub struct Client {
    pub stream: UnixStream,
}

impl Client {
    pub fn new(stream: UnixStream) -> Client {
        // Output is sent with a timeout so a stuck client cannot stall the
        // container; a client that cannot keep up is dropped.
        let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(2)));
        Client { stream }
    }

    pub fn send(&mut self, f: &Frame) -> io::Result<()> {
        self.stream.write_all(&f.encode())
    }

    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        Frame::read_from(&mut self.stream)
    }
}

/// Socket paths are limited to 108 bytes; a run root under a long temporary
/// directory exceeds that, so the socket is reached through an O_PATH
/// descriptor of its directory (/proc/self/fd/N/NAME), as conmon does.
fn short_path<T>(path: &Path, f: impl FnOnce(&str) -> io::Result<T>) -> Result<T> {
    let dir = path.parent().context("socket path without a directory")?;
    let name = path
        .file_name()
        .context("socket path without a name")?
        .to_string_lossy()
        .into_owned();
    let dfd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {}", dir.display()))?;
    let p = format!("{}/{name}", crate::sys::mount::fd_path(dfd.as_fd()));
    f(&p).with_context(|| format!("socket {}", path.display()))
}

pub fn listen(path: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    short_path(path, |p| UnixListener::bind(p))
}

pub fn connect(path: &Path) -> Result<UnixStream> {
    short_path(path, |p| UnixStream::connect(p))
}

/// Parses `ctrl-p,ctrl-q` (also `a`, `ctrl-@`, `ctrl-[`...) into bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    if s.is_empty() {
        return Ok(v);
    }
    for part in s.split(',') {
        let p = part.trim();
        if let Some(k) = p.strip_prefix("ctrl-") {
            let b = match k {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                k if k.len() == 1 && k.as_bytes()[0].is_ascii_alphabetic() => {
                    k.as_bytes()[0].to_ascii_lowercase() - b'a' + 1
                }
                _ => anyhow::bail!("invalid detach key {p:?}"),
            };
            v.push(b);
        } else if p.len() == 1 {
            v.push(p.as_bytes()[0]);
        } else {
            anyhow::bail!("invalid detach key {p:?}: use ctrl-<letter> or single characters");
        }
    }
    Ok(v)
}

/// Feeds `data` to the detach-sequence matcher. Returns `Some(n)` when the
/// sequence completed: the first `n` bytes are input to pass on (without the
/// sequence's own bytes), and the session should detach.
pub fn scan_detach(keys: &[u8], data: &[u8], state: &mut usize) -> Option<usize> {
    for (i, &b) in data.iter().enumerate() {
        if b == keys[*state] {
            *state += 1;
            if *state == keys.len() {
                *state = 0;
                return Some((i + 1).saturating_sub(keys.len()));
            }
        } else {
            *state = usize::from(b == keys[0]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for f in [
            Frame::Stdin(b"abc".to_vec()),
            Frame::Stdout(vec![]),
            Frame::Stderr(b"x".to_vec()),
            Frame::Exit(-3),
            Frame::CloseStdin,
            Frame::Resize(24, 80),
        ] {
            let bytes = f.encode();
            assert_eq!(Frame::read_from(&mut &bytes[..]).unwrap(), Some(f));
        }
        assert_eq!(Frame::read_from(&mut &b""[..]).unwrap(), None);
    }

    #[test]
    fn detach_keys() {
        let k = parse_detach_keys("ctrl-p,ctrl-q").unwrap();
        assert_eq!(k, vec![16, 17]);
        let mut st = 0;
        assert_eq!(scan_detach(&k, b"ab\x10", &mut st), None);
        assert_eq!(scan_detach(&k, b"\x11rest", &mut st), Some(0));
        let mut st = 0;
        assert_eq!(scan_detach(&k, b"xy\x10\x11", &mut st), Some(2));
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("").unwrap().is_empty());
    }
}

//! Appending what a container prints to its k8s-file log, with conmon's size
//! limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::record::{Stream, append_record};
use crate::util::time::{now_nanos, rfc3339_nanos};

/// Appends records to one container's log file.
///
/// With a `max_size` (`--log-opt max-size`), a record that would take the file
/// past the limit first replaces the file with an empty one, as conmon does:
/// the records before it stay in the old file, which disappears; the log keeps
/// only what was written since. The new file is created as `<path>.tmp` and
/// renamed over `path`, so a reader that follows the log sees a new file (a
/// new inode) rather than one shrinking under it; [`super::read_logs`] copes
/// with both. A single record larger than `max_size` is still written whole.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
    max_size: Option<u64>,
    /// Bytes in the current file (its size at open plus what we appended).
    size: u64,
    /// Reused for building one call's records.
    buf: Vec<u8>,
}

fn open_append(path: &Path, create_new: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true).mode(0o600);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true);
    }
    o.open(path)
}

impl LogWriter {
    /// Opens `path` for appending, creating it with mode 0600. `max_size`: when
    /// a record would take the file past it, the file is replaced by an empty
    /// one first (see the type's documentation); `Some(0)` means no limit.
    pub fn open(path: &Path, max_size: Option<u64>) -> Result<LogWriter> {
        let file = open_append(path, false).with_context(|| format!("open log {}", path.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("stat log {}", path.display()))?
            .len();
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            max_size: max_size.filter(|&m| m > 0),
            size,
            buf: Vec::new(),
        })
    }

    /// Records `data`, one chunk read from the container's `stream`: each
    /// complete line becomes an F record, a trailing piece without "\n" a P
    /// record, written at once (not held back) so that `logs -f` shows it. All
    /// records of a call carry the same time and go out in one write(2),
    /// except when the size limit replaces the file in between. An empty chunk
    /// writes nothing.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let time = rfc3339_nanos(now_nanos());
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.write_records(&mut buf, &time, stream, data);
        self.buf = buf;
        result
    }

    fn write_records(&mut self, buf: &mut Vec<u8>, time: &str, stream: Stream, data: &[u8]) -> Result<()> {
        // Start of the records in `buf` not yet written.
        let mut unwritten = 0;
        let mut rest = data;
        while !rest.is_empty() {
            let (content, partial, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], false, &rest[i + 1..]),
                None => (rest, true, &rest[rest.len()..]),
            };
            rest = next;
            let start = buf.len();
            append_record(buf, time, stream, partial, content);
            let len = (buf.len() - start) as u64;
            if let Some(max) = self.max_size
                && self.size > 0
                && self.size + len > max
            {
                self.append(&buf[unwritten..start])?;
                self.replace_file()?;
                unwritten = start;
            }
            self.size += len;
        }
        self.append(&buf[unwritten..])
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .with_context(|| format!("write log {}", self.path.display()))
    }

    /// Puts an empty file in place of the log (the size limit was reached).
    fn replace_file(&mut self) -> Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove stale {}", tmp.display())),
        }
        let file = open_append(&tmp, true).with_context(|| format!("create log {}", tmp.display()))?;
        fs::rename(&tmp, &self.path).with_context(|| format!("rename {} to {}", tmp.display(), self.path.display()))?;
        self.file = file;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::logs::{LogRecord, parse_record};

    fn records(path: &Path) -> Vec<LogRecord> {
        let data = fs::read(path).unwrap();
        assert!(data.is_empty() || data.ends_with(b"\n"));
        data.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse_record(l).unwrap())
            .collect()
    }

    fn summary(path: &Path) -> Vec<(Stream, bool, String)> {
        records(path)
            .into_iter()
            .map(|r| (r.stream, r.partial, String::from_utf8(r.content).unwrap()))
            .collect()
    }

    fn s(stream: Stream, partial: bool, c: &str) -> (Stream, bool, String) {
        (stream, partial, c.to_string())
    }

    #[test]
    fn creates_the_file_0600_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        w.write(Stream::Stdout, b"one\n").unwrap();
        drop(w);
        let mut w = LogWriter::open(&p, None).unwrap();
        w.write(Stream::Stdout, b"two\n").unwrap();
        assert_eq!(
            summary(&p),
            [s(Stream::Stdout, false, "one"), s(Stream::Stdout, false, "two")]
        );
    }

    #[test]
    fn splits_lines_and_writes_partials_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        w.write(Stream::Stdout, b"a\nb b\nc").unwrap();
        // The partial record is on disk before the line is finished.
        assert_eq!(summary(&p).last().unwrap(), &s(Stream::Stdout, true, "c"));
        w.write(Stream::Stderr, b"err\n").unwrap();
        w.write(Stream::Stdout, b"ont").unwrap();
        w.write(Stream::Stdout, b"inued\n").unwrap();
        w.write(Stream::Stdout, b"").unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        w.write(Stream::Stdout, b"\n\n").unwrap();
        assert_eq!(
            summary(&p),
            [
                s(Stream::Stdout, false, "a"),
                s(Stream::Stdout, false, "b b"),
                s(Stream::Stdout, true, "c"),
                s(Stream::Stderr, false, "err"),
                s(Stream::Stdout, true, "ont"),
                s(Stream::Stdout, false, "inued"),
                s(Stream::Stdout, false, ""),
                s(Stream::Stdout, false, ""),
                s(Stream::Stdout, false, ""),
            ]
        );
    }

    #[test]
    fn one_call_shares_one_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let before = now_nanos();
        let mut w = LogWriter::open(&p, None).unwrap();
        w.write(Stream::Stdout, b"x\ny\nz").unwrap();
        let after = now_nanos();
        let recs = records(&p);
        assert_eq!(recs.len(), 3);
        assert!(recs.iter().all(|r| r.time == recs[0].time));
        assert!(before <= recs[0].time && recs[0].time <= after);
    }

    #[test]
    fn binary_content_is_preserved() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        let data = [0xff, 0xfe, 0x00, b' ', b'\r', b'\n', 0xc3];
        w.write(Stream::Stderr, &data).unwrap();
        let recs = records(&p);
        assert_eq!(recs[0].content, [0xff, 0xfe, 0x00, b' ', b'\r']);
        assert!(!recs[0].partial);
        assert_eq!(recs[1].content, [0xc3]);
        assert!(recs[1].partial);
    }

    #[test]
    fn max_size_replaces_the_file_with_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        // A record of a 3-byte line: 30 (time) + 7 (" stdout") + 3 (" F ") + 3 + 1 ("\n") = 44 bytes.
        let mut w = LogWriter::open(&p, Some(100)).unwrap();
        w.write(Stream::Stdout, b"aaa\nbbb\n").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 88);
        let ino = fs::metadata(&p).unwrap().ino();
        w.write(Stream::Stdout, b"ccc\n").unwrap();
        assert_eq!(summary(&p), [s(Stream::Stdout, false, "ccc")]);
        assert_ne!(fs::metadata(&p).unwrap().ino(), ino, "the file is replaced, not shrunk");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!dir.path().join("ctr.log.tmp").exists());
        // Within one call, as conmon checks each record: "ddd" fits after "ccc",
        // "eee" starts a new file, and the partial "f" (42 bytes) still fits.
        w.write(Stream::Stdout, b"ddd\neee\nf").unwrap();
        assert_eq!(
            summary(&p),
            [s(Stream::Stdout, false, "eee"), s(Stream::Stdout, true, "f")]
        );
        // A record larger than the limit is still written.
        let big = "x".repeat(200);
        w.write(Stream::Stderr, format!("{big}\n").as_bytes()).unwrap();
        assert_eq!(summary(&p), [s(Stream::Stderr, false, &big)]);
        w.write(Stream::Stderr, b"y\n").unwrap();
        assert_eq!(summary(&p), [s(Stream::Stderr, false, "y")]);
    }

    #[test]
    fn max_size_counts_what_the_file_already_holds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        LogWriter::open(&p, None)
            .unwrap()
            .write(Stream::Stdout, b"aaa\n")
            .unwrap();
        let mut w = LogWriter::open(&p, Some(60)).unwrap();
        w.write(Stream::Stdout, b"bbb\n").unwrap();
        assert_eq!(summary(&p), [s(Stream::Stdout, false, "bbb")]);
    }
}

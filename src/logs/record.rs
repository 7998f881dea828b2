//! One record (line) of a k8s-file log: how it is written and parsed.

use anyhow::{Context, Result, anyhow, bail};

use crate::util::time::{Nanos, parse_rfc3339};

/// Which of the container's output streams a record came from. A terminal
/// (pty) is one stream, recorded as stdout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name used in the log file.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// 0 for stdout, 1 for stderr: an index into per-stream state.
    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One parsed record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LogRecord {
    pub time: Nanos,
    pub stream: Stream,
    /// `P`: the content did not end a line; the next record of the stream continues it.
    pub partial: bool,
    /// The bytes the container wrote, without the "\n" of a full line. Not
    /// necessarily UTF-8.
    pub content: Vec<u8>,
}

/// A parsed record borrowing its content from the line: what the reader uses,
/// so that streaming a large log copies no content.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordRef<'a> {
    pub time: Nanos,
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one line (without the "\n"); a malformed line is an error (readers
/// skip such lines with one warning).
pub fn parse_record(line: &[u8]) -> Result<LogRecord> {
    let r = parse_record_ref(line)?;
    Ok(LogRecord {
        time: r.time,
        stream: r.stream,
        partial: r.partial,
        content: r.content.to_vec(),
    })
}

/// Splits `s` at its first space: (before, after). Without a space, `after` is None.
fn split_space(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

pub(crate) fn parse_record_ref(line: &[u8]) -> Result<RecordRef<'_>> {
    parse_fields(line).with_context(|| format!("malformed log line {:?}", excerpt(line)))
}

fn parse_fields(line: &[u8]) -> Result<RecordRef<'_>> {
    let (ts, rest) = split_space(line);
    let rest = rest.ok_or_else(|| anyhow!("no stream after the time"))?;
    // Only ASCII can be a time; checking it here also keeps the byte-indexed
    // time parser on character boundaries.
    if !ts.is_ascii() {
        bail!("the time is not ASCII");
    }
    let ts = std::str::from_utf8(ts).context("the time is not ASCII")?;
    // A bare date would parse as RFC 3339 too, but a log line always has a time of day.
    if !ts.contains(['T', 't']) {
        bail!("{ts:?} is not a date and time");
    }
    let time = parse_rfc3339(ts)?;
    let (stream, rest) = split_space(rest);
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => bail!("unknown stream {:?}", String::from_utf8_lossy(other)),
    };
    let rest = rest.ok_or_else(|| anyhow!("no F/P tag after the stream"))?;
    let (tags, content) = split_space(rest);
    // The CRI format allows more tags joined by ':'; the first is F or P.
    let first_tag = tags.split(|&b| b == b':').next().unwrap_or_default();
    let partial = match first_tag {
        b"F" => false,
        b"P" => true,
        other => bail!("unknown tag {:?}", String::from_utf8_lossy(other)),
    };
    Ok(RecordRef {
        time,
        stream,
        partial,
        content: content.unwrap_or_default(),
    })
}

/// The start of a line, for an error message.
fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 80;
    let mut s = String::from_utf8_lossy(&line[..line.len().min(MAX)]).into_owned();
    if line.len() > MAX {
        s.push('…');
    }
    s
}

/// Appends one record, with its terminating "\n", to `buf`. `time` is the
/// already formatted timestamp; `content` must not contain "\n".
pub(crate) fn append_record(buf: &mut Vec<u8>, time: &str, stream: Stream, partial: bool, content: &[u8]) {
    debug_assert!(!content.contains(&b'\n'));
    buf.extend_from_slice(time.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(stream.as_str().as_bytes());
    buf.extend_from_slice(if partial { b" P " } else { b" F " });
    buf.extend_from_slice(content);
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time::rfc3339_nanos;

    const T: Nanos = 1_714_566_896_123_456_789;

    #[test]
    fn parses_a_full_record() {
        let r = parse_record(b"2024-05-01T12:34:56.123456789Z stdout F hello  world ").unwrap();
        assert_eq!(
            r,
            LogRecord {
                time: T,
                stream: Stream::Stdout,
                partial: false,
                content: b"hello  world ".to_vec()
            }
        );
    }

    #[test]
    fn parses_a_partial_stderr_record_with_an_offset() {
        // conmon writes local time with an offset; 14:34:56+02:00 is 12:34:56Z.
        let r = parse_record(b"2024-05-01T14:34:56.123456789+02:00 stderr P abc").unwrap();
        assert_eq!(r.time, T);
        assert_eq!(r.stream, Stream::Stderr);
        assert!(r.partial);
        assert_eq!(r.content, b"abc");
        let r = parse_record(b"2024-05-01T10:34:56.123456789-02:00 stdout F x").unwrap();
        assert_eq!(r.time, T);
    }

    #[test]
    fn empty_content_with_or_without_the_space() {
        let a = parse_record(b"2024-05-01T12:34:56.123456789Z stdout F ").unwrap();
        let b = parse_record(b"2024-05-01T12:34:56.123456789Z stdout F").unwrap();
        assert_eq!(a, b);
        assert!(a.content.is_empty());
    }

    #[test]
    fn extra_cri_tags_are_accepted() {
        let r = parse_record(b"2024-05-01T12:34:56.123456789Z stdout P:x y").unwrap();
        assert!(r.partial);
        assert_eq!(r.content, b"y");
    }

    #[test]
    fn binary_content_is_kept() {
        let mut line = b"2024-05-01T12:34:56.123456789Z stdout F ".to_vec();
        line.extend_from_slice(&[0xff, 0x00, 0xfe, b'\r']);
        assert_eq!(parse_record(&line).unwrap().content, [0xff, 0x00, 0xfe, b'\r']);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for line in [
            &b""[..],
            b"hello world",
            b"2024-05-01T12:34:56Z",
            b"2024-05-01T12:34:56Z stdout",
            b"2024-05-01T12:34:56Z stdin F x",
            b"2024-05-01T12:34:56Z stdout X x",
            b"2024-05-01T12:34:56Z stdout  x",
            b"2024-13-01T12:34:56Z stdout F x",
            b"2024-05-01 stdout F x",
            b"2024-05-01T12:34:56Zjunk stdout F x",
            "2024-05-01T12:34:5\u{e9} stdout F x".as_bytes(),
            b"\xff\xfe stdout F x",
        ] {
            let e = parse_record(line).expect_err(&String::from_utf8_lossy(line));
            assert!(format!("{e:#}").contains("malformed log line"), "{e:#}");
        }
    }

    #[test]
    fn append_then_parse_round_trips() {
        let mut buf = Vec::new();
        append_record(&mut buf, &rfc3339_nanos(T), Stream::Stderr, true, b"a b");
        assert_eq!(buf, b"2024-05-01T12:34:56.123456789Z stderr P a b\n");
        let r = parse_record(&buf[..buf.len() - 1]).unwrap();
        assert_eq!(
            (r.time, r.stream, r.partial, &r.content[..]),
            (T, Stream::Stderr, true, &b"a b"[..])
        );
    }
}

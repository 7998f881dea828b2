//! Reading a k8s-file log for `casco logs`: joining partial records into
//! lines, `--since`/`--until`, `--tail`, `--timestamps`, name prefixes and
//! `--follow`.
//!
//! The file is streamed, never read whole. `--tail N` scans backwards from the
//! end in blocks to find where the last N lines start, then streams from
//! there.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result};

use super::record::{RecordRef, Stream, parse_record_ref};
use super::watch::{FileWatch, INTERVAL};
use crate::util::time::{Nanos, now_nanos, rfc3339_nanos};

/// What `casco logs` asks for.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Only records at or after this time.
    pub since: Option<Nanos>,
    /// Only records at or before this time; with `follow`, following stops then.
    pub until: Option<Nanos>,
    /// Only the last N lines (0: none, except what `follow` brings later).
    pub tail: Option<usize>,
    /// Put "<RFC 3339 time> " before each line: the time of its first record.
    pub timestamps: bool,
    /// Put this before each line (before the time): "name " for `--names`.
    pub prefix: Option<String>,
    /// After the end, wait for more until the container stops.
    pub follow: bool,
}

/// Writes the log's lines to `out` (stdout records) and `err` (stderr
/// records): partial records are joined with the ones that continue them into
/// one line, and each full line gets its "\n" back. A line still unfinished at
/// the end is written as far as it goes, without a "\n".
///
/// `since`/`until` filter single records by their time (inclusive). `tail`
/// keeps the last N lines of both streams together, counted after filtering.
///
/// With `follow`: at the end of the file, waits for more (inotify, or at most
/// [`INTERVAL`]) until `still_running()` returns false or `until` passes, then
/// reads what is left and returns. If the file is truncated or replaced (the
/// writer's size limit) meanwhile, reading goes on at the start of the new
/// content. Output is flushed before each wait.
///
/// A file that does not exist gives no output (with `follow`, it is waited for
/// while the container runs). Malformed lines are skipped with one warning.
pub fn read_logs(
    path: &Path,
    opts: &ReadOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    still_running: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let mut em = Emitter {
        out: BufWriter::with_capacity(BUF_SIZE, out),
        err: BufWriter::with_capacity(BUF_SIZE, err),
        opts,
        path,
        open: [false; 2],
        skip_through: [None; 2],
        warned: false,
    };
    let result = read_into(path, opts, &mut em, still_running);
    // Flush what was written even when reading failed.
    let flushed = em.flush();
    result.and(flushed)
}

const BUF_SIZE: usize = 64 * 1024;

fn open_log(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open log {}", path.display())),
    }
}

fn read_into(
    path: &Path,
    opts: &ReadOptions,
    em: &mut Emitter<'_>,
    still_running: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let file = loop {
        if let Some(f) = open_log(path)? {
            break f;
        }
        if !opts.follow || until_passed(opts) {
            return Ok(());
        }
        if !still_running() {
            // One last look: the file may have appeared just before the exit.
            match open_log(path)? {
                Some(f) => break f,
                None => return Ok(()),
            }
        }
        std::thread::sleep(INTERVAL);
    };
    let len = file
        .metadata()
        .with_context(|| format!("stat log {}", path.display()))?
        .len();
    let start = match opts.tail {
        Some(n) => {
            let t = scan_tail(&file, len, n, opts).with_context(|| format!("read log {}", path.display()))?;
            em.skip_through = t.skip_through;
            t.start
        }
        None => 0,
    };
    let mut f = Follower {
        reader: BufReader::with_capacity(BUF_SIZE, file),
        offset: start,
        line: Vec::new(),
    };
    f.reader
        .seek(SeekFrom::Start(start))
        .with_context(|| format!("seek log {}", path.display()))?;
    if !opts.follow {
        f.pump(em)?;
        return f.finish(em);
    }
    let mut watch = FileWatch::new(path);
    loop {
        f.catch_up(em, &mut watch)?;
        em.flush()?;
        if until_passed(opts) {
            break;
        }
        if !still_running() {
            // Whatever the container wrote before it stopped is in the file now.
            f.catch_up(em, &mut watch)?;
            break;
        }
        watch.wait();
    }
    f.finish(em)
}

fn until_passed(opts: &ReadOptions) -> bool {
    opts.until.is_some_and(|u| now_nanos() > u)
}

fn in_window(opts: &ReadOptions, t: Nanos) -> bool {
    opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u)
}

/// Turns records into output lines.
struct Emitter<'a> {
    out: BufWriter<&'a mut dyn Write>,
    err: BufWriter<&'a mut dyn Write>,
    opts: &'a ReadOptions,
    path: &'a Path,
    /// Per stream: a line has been started (prefix written) and not ended.
    open: [bool; 2],
    /// Per stream: skip records at or before this offset (lines before the tail).
    skip_through: [Option<u64>; 2],
    warned: bool,
}

impl Emitter<'_> {
    /// Handles one line of the file that starts at byte `offset`.
    fn line(&mut self, line: &[u8], offset: u64) -> Result<()> {
        let rec = match parse_record_ref(line) {
            Ok(r) => r,
            Err(e) => {
                if !self.warned {
                    self.warned = true;
                    crate::output::warn(&format!(
                        "{}: skipping malformed lines, the first at byte {offset}: {e:#}",
                        self.path.display()
                    ));
                }
                return Ok(());
            }
        };
        if !in_window(self.opts, rec.time) {
            return Ok(());
        }
        let i = rec.stream.index();
        if self.skip_through[i].is_some_and(|s| offset <= s) {
            return Ok(());
        }
        self.emit(rec, i).context("write logs")
    }

    fn emit(&mut self, rec: RecordRef<'_>, i: usize) -> io::Result<()> {
        let w = match rec.stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        if !self.open[i] {
            if let Some(p) = &self.opts.prefix {
                w.write_all(p.as_bytes())?;
            }
            if self.opts.timestamps {
                w.write_all(rfc3339_nanos(rec.time).as_bytes())?;
                w.write_all(b" ")?;
            }
        }
        w.write_all(rec.content)?;
        if !rec.partial {
            w.write_all(b"\n")?;
        }
        self.open[i] = rec.partial;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().context("write logs")?;
        self.err.flush().context("write logs")
    }
}

/// Reads the file forwards, through truncation and replacement.
struct Follower {
    reader: BufReader<File>,
    /// Offset in the file of the end of what was read into `line` or handled.
    offset: u64,
    /// A line read so far without its "\n" (the writer is mid-write).
    line: Vec<u8>,
}

enum Change {
    None,
    /// Shorter than what we read: truncated in place.
    Truncated,
    /// The path names another file now.
    Replaced(File),
}

impl Follower {
    /// Handles every complete line up to the end of the file; keeps an
    /// unterminated last line in `self.line` for later.
    fn pump(&mut self, em: &mut Emitter<'_>) -> Result<()> {
        loop {
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .with_context(|| format!("read log {}", em.path.display()))?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            if self.line.last() != Some(&b'\n') {
                return Ok(());
            }
            let start = self.offset - self.line.len() as u64;
            em.line(&self.line[..self.line.len() - 1], start)?;
            self.line.clear();
        }
    }

    /// The unterminated last line, if any, is taken as it is (its writer may
    /// have died mid-write).
    fn finish(&mut self, em: &mut Emitter<'_>) -> Result<()> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            em.line(&line, self.offset - line.len() as u64)?;
        }
        Ok(())
    }

    /// Reads to the end, following the log into a new file or back to the
    /// start of a truncated one.
    fn catch_up(&mut self, em: &mut Emitter<'_>, watch: &mut FileWatch) -> Result<()> {
        loop {
            self.pump(em)?;
            match self.change(em.path)? {
                Change::None => return Ok(()),
                Change::Truncated => {
                    // What was written between our last read and the truncation is lost.
                    self.line.clear();
                    self.reader
                        .seek(SeekFrom::Start(0))
                        .with_context(|| format!("seek log {}", em.path.display()))?;
                }
                Change::Replaced(file) => {
                    // The writer finished with the old file before it put the new
                    // one in place: read the old one to its end first.
                    self.pump(em)?;
                    self.finish(em)?;
                    self.reader = BufReader::with_capacity(BUF_SIZE, file);
                    watch.rewatch(em.path);
                }
            }
            self.offset = 0;
            // The offsets from the tail scan were about the old content.
            em.skip_through = [None; 2];
        }
    }

    fn change(&self, path: &Path) -> Result<Change> {
        let ours = self
            .reader
            .get_ref()
            .metadata()
            .with_context(|| format!("stat log {}", path.display()))?;
        match std::fs::metadata(path) {
            Ok(now) if (now.dev(), now.ino()) != (ours.dev(), ours.ino()) => {
                // Open by path again: it may have been replaced once more since the stat.
                return Ok(match open_log(path)? {
                    Some(f) => Change::Replaced(f),
                    None => Change::None,
                });
            }
            Ok(_) => {}
            // Removed (with its container): keep reading what we have open.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("stat log {}", path.display())),
        }
        Ok(if ours.len() < self.offset {
            Change::Truncated
        } else {
            Change::None
        })
    }
}

/// Where the last N lines start.
struct TailStart {
    start: u64,
    skip_through: [Option<u64>; 2],
}

/// Walks the records backwards, counting lines. A record ends a line when it
/// is a full one, or the last (partial) record of its stream; the partial
/// records before it, back to the previous full one of the same stream,
/// belong to that line. Lines of the two streams interleave, so a line of one
/// stream may start before the end of the first line not wanted of the other:
/// streams that have found that line get a skip offset.
struct TailScan<'a> {
    opts: &'a ReadOptions,
    want: usize,
    count: usize,
    /// Per stream: inside a counted line, looking for its first record.
    in_line: [bool; 2],
    /// Per stream: found the end of a line before the tail; nothing earlier is wanted.
    done: [bool; 2],
    skip_through: [Option<u64>; 2],
    /// Offset of the earliest record seen that belongs to a counted line.
    start: u64,
}

impl TailScan<'_> {
    /// Takes the record at `offset`; true when the scan can stop.
    fn visit(&mut self, line: &[u8], offset: u64) -> bool {
        let Ok(rec) = parse_record_ref(line) else {
            return false;
        };
        if !in_window(self.opts, rec.time) {
            return false;
        }
        let i = rec.stream.index();
        if self.done[i] {
            return false;
        }
        if rec.partial && self.in_line[i] {
            // Continues (backwards: begins) the line being collected.
            self.start = offset;
        } else if self.count < self.want {
            self.count += 1;
            self.in_line[i] = true;
            self.start = offset;
        } else {
            self.done[i] = true;
            self.in_line[i] = false;
            self.skip_through[i] = Some(offset);
        }
        self.count == self.want && (0..2).all(|s| !self.in_line[s] || self.done[s])
    }
}

/// Finds where the last `want` lines of the first `end` bytes of `file` start.
fn scan_tail(file: &File, end: u64, want: usize, opts: &ReadOptions) -> io::Result<TailStart> {
    let mut scan = TailScan {
        opts,
        want,
        count: 0,
        in_line: [false; 2],
        done: [false; 2],
        skip_through: [None; 2],
        start: end,
    };
    if want == 0 {
        return Ok(TailStart {
            start: end,
            skip_through: [None; 2],
        });
    }
    // `pending` holds the bytes [pos, pos + pending.len()) not yet split into
    // lines: the end of a line whose start lies before `pos`.
    let mut pos = end;
    let mut pending: Vec<u8> = Vec::new();
    'blocks: loop {
        if pos > 0 {
            // Grow the block with the pending bytes so that a very long line
            // costs a few large copies, not one per block.
            let n = (BUF_SIZE as u64).max(pending.len() as u64).min(pos);
            pos -= n;
            let mut block = vec![0; n as usize];
            file.read_exact_at(&mut block, pos)?;
            block.extend_from_slice(&pending);
            pending = block;
        }
        while !pending.is_empty() {
            let body_end = pending.len() - usize::from(pending.last() == Some(&b'\n'));
            let line_start = match pending[..body_end].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if pos == 0 => 0,
                None => continue 'blocks,
            };
            if scan.visit(&pending[line_start..body_end], pos + line_start as u64) {
                break 'blocks;
            }
            pending.truncate(line_start);
        }
        if pos == 0 {
            break;
        }
    }
    Ok(TailStart {
        start: scan.start,
        skip_through: scan.skip_through,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::logs::LogWriter;
    use crate::logs::record::append_record;

    const SEC: Nanos = 1_000_000_000;
    /// 2024-05-01T12:34:56Z
    const T0: Nanos = 1_714_566_896 * SEC;

    /// A log file from (seconds after T0, stream, partial, content).
    fn log_file(dir: &Path, recs: &[(i64, Stream, bool, &str)]) -> std::path::PathBuf {
        let p = dir.join("ctr.log");
        let mut buf = Vec::new();
        for &(t, stream, partial, content) in recs {
            let t = T0 + Nanos::from(t) * SEC;
            append_record(&mut buf, &rfc3339_nanos(t), stream, partial, content.as_bytes());
        }
        std::fs::write(&p, buf).unwrap();
        p
    }

    fn read(p: &Path, opts: &ReadOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        read_logs(p, opts, &mut out, &mut err, &mut || false).unwrap();
        (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    use Stream::{Stderr as E, Stdout as O};

    fn mixed(dir: &Path) -> std::path::PathBuf {
        log_file(
            dir,
            &[
                (0, O, false, "one"),
                (1, E, true, "e-"),
                (2, O, true, "tw"),
                (3, E, false, "two"),
                (4, O, false, "o"),
                (5, O, false, ""),
                (6, E, false, "three"),
                (7, O, true, "unfinished"),
            ],
        )
    }

    #[test]
    fn separates_streams_and_joins_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = mixed(dir.path());
        assert_eq!(
            read(&p, &ReadOptions::default()),
            ("one\ntwo\n\nunfinished".into(), "e-two\nthree\n".into())
        );
    }

    #[test]
    fn a_missing_file_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("absent.log");
        assert_eq!(read(&p, &ReadOptions::default()), (String::new(), String::new()));
        let opts = ReadOptions {
            follow: true,
            ..Default::default()
        };
        assert_eq!(read(&p, &opts), (String::new(), String::new()));
    }

    #[test]
    fn binary_content_comes_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        let data = [0xff, 0x00, b'a', b'\r', b'\n', 0xc3, b'\n', 0x80];
        w.write(Stream::Stdout, &data[..6]).unwrap();
        w.write(Stream::Stdout, &data[6..]).unwrap();
        let mut out = Vec::new();
        read_logs(&p, &ReadOptions::default(), &mut out, &mut Vec::new(), &mut || false).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn skips_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut data = b"garbage\n\n".to_vec();
        append_record(&mut data, &rfc3339_nanos(T0), O, false, b"kept");
        data.extend_from_slice(b"2024-05-01T12:34:56Z stdin F nope\n");
        append_record(&mut data, &rfc3339_nanos(T0), E, false, b"also kept");
        std::fs::write(&p, &data).unwrap();
        assert_eq!(
            read(&p, &ReadOptions::default()),
            ("kept\n".into(), "also kept\n".into())
        );
        let opts = ReadOptions {
            tail: Some(1),
            ..Default::default()
        };
        assert_eq!(read(&p, &opts), (String::new(), "also kept\n".into()));
    }

    #[test]
    fn reads_conmon_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        std::fs::write(&p, "2024-05-01T14:34:56.000000000+02:00 stdout F hi\n").unwrap();
        let opts = ReadOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(read(&p, &opts).0, "2024-05-01T12:34:56.000000000Z hi\n");
    }

    #[test]
    fn since_and_until_filter_records_inclusively() {
        let dir = tempfile::tempdir().unwrap();
        let p = mixed(dir.path());
        let opts = ReadOptions {
            since: Some(T0 + 3 * SEC),
            until: Some(T0 + 6 * SEC),
            ..Default::default()
        };
        // The partial "tw" (2 s) is before the window: its line starts at "o".
        assert_eq!(read(&p, &opts), ("o\n\n".into(), "two\nthree\n".into()));
    }

    #[test]
    fn tail_keeps_the_last_lines_of_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let p = mixed(dir.path());
        let tail = |n| ReadOptions {
            tail: Some(n),
            ..Default::default()
        };
        assert_eq!(read(&p, &tail(0)), (String::new(), String::new()));
        assert_eq!(read(&p, &tail(1)), ("unfinished".into(), String::new()));
        assert_eq!(read(&p, &tail(2)), ("unfinished".into(), "three\n".into()));
        assert_eq!(read(&p, &tail(3)), ("\nunfinished".into(), "three\n".into()));
        // "two" ends after "o" started (its first record "e-" even before "tw").
        assert_eq!(
            read(&p, &tail(5)),
            ("two\n\nunfinished".into(), "e-two\nthree\n".into())
        );
        assert_eq!(
            read(&p, &tail(6)),
            ("one\ntwo\n\nunfinished".into(), "e-two\nthree\n".into())
        );
        assert_eq!(read(&p, &tail(100)), read(&p, &ReadOptions::default()));
    }

    #[test]
    fn tail_leaves_out_a_line_that_ends_inside_the_tail() {
        // stderr's line "ab" starts before stdout's "x", which is not wanted.
        let dir = tempfile::tempdir().unwrap();
        let p = log_file(dir.path(), &[(0, E, true, "a"), (1, O, false, "x"), (2, E, false, "b")]);
        let opts = ReadOptions {
            tail: Some(1),
            ..Default::default()
        };
        assert_eq!(read(&p, &opts), (String::new(), "ab\n".into()));
    }

    #[test]
    fn tail_counts_after_filtering() {
        let dir = tempfile::tempdir().unwrap();
        let p = mixed(dir.path());
        let opts = ReadOptions {
            tail: Some(1),
            until: Some(T0 + 4 * SEC),
            ..Default::default()
        };
        assert_eq!(read(&p, &opts), ("two\n".into(), String::new()));
    }

    #[test]
    fn tail_across_blocks_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut data = Vec::new();
        for i in 0..20_000 {
            append_record(
                &mut data,
                &rfc3339_nanos(T0 + i),
                O,
                false,
                format!("line {i}").as_bytes(),
            );
        }
        // One record far longer than a block, and a line split over many records.
        let long = "y".repeat(3 * BUF_SIZE + 17);
        append_record(&mut data, &rfc3339_nanos(T0), O, false, long.as_bytes());
        for _ in 0..5000 {
            append_record(&mut data, &rfc3339_nanos(T0), E, true, b"0123456789");
        }
        append_record(&mut data, &rfc3339_nanos(T0), E, false, b"end");
        std::fs::write(&p, &data).unwrap();
        let tail = |n| ReadOptions {
            tail: Some(n),
            ..Default::default()
        };
        let (out, err) = read(&p, &tail(1));
        assert_eq!(out, "");
        assert_eq!(err, format!("{}end\n", "0123456789".repeat(5000)));
        // The 4 last lines: stderr's, the long one and two short ones.
        let (out, err) = read(&p, &tail(4));
        assert!(err.ends_with("end\n"));
        let want = format!("line 19998\nline 19999\n{long}\n");
        assert!(
            out == want,
            "got {} bytes starting {:?}",
            out.len(),
            &out[..out.len().min(30)]
        );
        let (out, _) = read(&p, &tail(20_000));
        assert!(out.starts_with("line 2\nline 3\n"), "{}", &out[..20]);
    }

    #[test]
    fn timestamps_and_names_prefix_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = mixed(dir.path());
        let opts = ReadOptions {
            timestamps: true,
            prefix: Some("web ".into()),
            ..Default::default()
        };
        let (out, err) = read(&p, &opts);
        assert_eq!(
            out,
            "web 2024-05-01T12:34:56.000000000Z one\n\
             web 2024-05-01T12:34:58.000000000Z two\n\
             web 2024-05-01T12:35:01.000000000Z \n\
             web 2024-05-01T12:35:03.000000000Z unfinished"
        );
        assert_eq!(
            err,
            "web 2024-05-01T12:34:57.000000000Z e-two\n\
             web 2024-05-01T12:35:02.000000000Z three\n"
        );
        let names_only = ReadOptions {
            prefix: Some("web ".into()),
            tail: Some(1),
            ..Default::default()
        };
        assert_eq!(read(&p, &names_only).0, "web unfinished");
    }

    /// An output that another thread can watch.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// Waits (up to 10 s) until the output ends with `end`.
        fn wait_for(&self, end: &str) {
            let t = Instant::now();
            while !self.text().ends_with(end) {
                assert!(t.elapsed() < Duration::from_secs(10), "no {end:?} in {:?}", self.text());
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Runs read_logs with `follow` in a thread while `feed` writes the log;
    /// the container "stops" when `feed` returns. `feed`'s third argument
    /// waits until the reader has read to the end once and started waiting.
    /// Gives (stdout, stderr).
    fn follow_while(p: &Path, opts: ReadOptions, feed: impl FnOnce(&Shared, &Shared, &dyn Fn())) -> (String, String) {
        let (out, err) = (Shared::default(), Shared::default());
        let running = Arc::new(AtomicBool::new(true));
        let polls = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (mut out, mut err, p) = (out.clone(), err.clone(), p.to_path_buf());
            let (running, polls) = (running.clone(), polls.clone());
            std::thread::spawn(move || {
                let opts = ReadOptions { follow: true, ..opts };
                read_logs(&p, &opts, &mut out, &mut err, &mut || {
                    polls.fetch_add(1, Ordering::SeqCst);
                    running.load(Ordering::SeqCst)
                })
            })
        };
        let following = || {
            let t = Instant::now();
            while polls.load(Ordering::SeqCst) == 0 {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "read_logs never asked whether it runs"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        feed(&out, &err, &following);
        running.store(false, Ordering::SeqCst);
        reader.join().unwrap().unwrap();
        (out.text(), err.text())
    }

    #[test]
    fn follow_delivers_lines_as_they_come_and_the_rest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        w.write(O, b"old\n").unwrap();
        let (out, err) = follow_while(&p, ReadOptions::default(), |out, err, _| {
            out.wait_for("old\n");
            w.write(O, b"par").unwrap();
            // A partial record shows before its line is finished.
            out.wait_for("old\npar");
            w.write(O, b"tial\n").unwrap();
            w.write(E, b"oops\n").unwrap();
            err.wait_for("oops\n");
            for i in 0..100 {
                w.write(O, format!("{i}\n").as_bytes()).unwrap();
            }
            // Written just before the container stops: still read.
            w.write(E, b"last words\n").unwrap();
        });
        let numbers: String = (0..100).map(|i| format!("{i}\n")).collect();
        assert_eq!(out, format!("old\npartial\n{numbers}"));
        assert_eq!(err, "oops\nlast words\n");
    }

    #[test]
    fn follow_with_tail_zero_shows_only_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        w.write(O, b"before\n").unwrap();
        let opts = ReadOptions {
            tail: Some(0),
            ..Default::default()
        };
        let (out, _) = follow_while(&p, opts, |out, _, following| {
            following();
            w.write(O, b"after\n").unwrap();
            out.wait_for("after\n");
        });
        assert_eq!(out, "after\n");
    }

    #[test]
    fn follow_waits_for_the_file_to_appear() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let (out, _) = follow_while(&p, ReadOptions::default(), |out, _, _| {
            std::thread::sleep(Duration::from_millis(50));
            LogWriter::open(&p, None).unwrap().write(O, b"hello\n").unwrap();
            out.wait_for("hello\n");
        });
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn follow_across_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        // Room for two 44-byte records per file.
        let mut w = LogWriter::open(&p, Some(100)).unwrap();
        let (out, _) = follow_while(&p, ReadOptions::default(), |out, _, _| {
            for i in 100..120 {
                w.write(O, format!("{i}\n").as_bytes()).unwrap();
                w.write(O, format!("{i}\n").as_bytes()).unwrap();
                // Each file is replaced once it is read, so nothing is lost.
                out.wait_for(&format!("{i}\n{i}\n"));
            }
            w.write(O, b"end\n").unwrap();
        });
        let expected: String = (100..120).map(|i| format!("{i}\n{i}\n")).collect();
        assert_eq!(out, format!("{expected}end\n"));
    }

    #[test]
    fn follow_across_truncation_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, None).unwrap();
        w.write(O, b"a fairly long line before truncation\n").unwrap();
        let (out, _) = follow_while(&p, ReadOptions::default(), |out, _, _| {
            out.wait_for("truncation\n");
            // As `copytruncate` would: the same file, emptied under the writer.
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(0)
                .unwrap();
            w.write(O, b"new\n").unwrap();
            out.wait_for("new\n");
            w.write(O, b"more\n").unwrap();
        });
        assert_eq!(out, "a fairly long line before truncation\nnew\nmore\n");
    }

    #[test]
    fn follow_stops_at_until() {
        let dir = tempfile::tempdir().unwrap();
        let p = log_file(dir.path(), &[(0, O, false, "x")]);
        let opts = ReadOptions {
            follow: true,
            until: Some(now_nanos()),
            ..Default::default()
        };
        let mut out = Vec::new();
        // The container never stops; `until` ends the following.
        read_logs(&p, &opts, &mut out, &mut Vec::new(), &mut || true).unwrap();
        assert_eq!(out, b"x\n");
    }
}

//! Waiting for a followed log file to change: inotify on the file, with a
//! timeout so that a missed event (or no inotify at all) costs at most one
//! interval.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// How long a wait lasts when no event comes.
pub(crate) const INTERVAL: Duration = Duration::from_millis(250);

pub(crate) struct FileWatch {
    /// None when inotify could not be set up (no instances left, say): then
    /// waiting is plain sleeping.
    inotify: Option<(Inotify, Option<WatchDescriptor>)>,
}

impl FileWatch {
    /// Watches the file at `path`.
    pub(crate) fn new(path: &Path) -> FileWatch {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
        let mut w = FileWatch {
            inotify: inotify.map(|i| (i, None)),
        };
        w.rewatch(path);
        w
    }

    /// Moves the watch to whatever file `path` names now (after the log was
    /// replaced). If that fails, waits fall back to the interval.
    pub(crate) fn rewatch(&mut self, path: &Path) {
        let Some((inotify, wd)) = &mut self.inotify else {
            return;
        };
        if let Some(old) = wd.take() {
            // The old file may already be gone, which removed the watch itself.
            let _ = inotify.rm_watch(old);
        }
        // IN_ATTRIB also reports the link count dropping, which is what a
        // rename over the file does to it.
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_DELETE_SELF;
        *wd = inotify.add_watch(path, mask).ok();
    }

    /// Returns when the file changed or after [`INTERVAL`], whichever is first.
    pub(crate) fn wait(&self) {
        let Some((inotify, Some(_))) = &self.inotify else {
            std::thread::sleep(INTERVAL);
            return;
        };
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(INTERVAL).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            // Drain the queue so that the next wait blocks until a new event;
            // the events themselves do not matter, the reader looks at the file.
            Ok(n) if n > 0 => while inotify.read_events().is_ok_and(|ev| !ev.is_empty()) {},
            Ok(_) => {}
            // EINTR and the like: return early, the caller just looks again.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_write_ends_the_wait_early() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let w = FileWatch::new(&p);
        std::fs::write(&p, b"y").unwrap();
        let t = Instant::now();
        w.wait();
        assert!(t.elapsed() < INTERVAL, "the queued event should end the wait at once");
        // The queue was drained: nothing happened since, so this one times out.
        let t = Instant::now();
        w.wait();
        assert!(t.elapsed() >= INTERVAL - Duration::from_millis(10));
    }

    #[test]
    fn a_missing_file_falls_back_to_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let w = FileWatch::new(&dir.path().join("absent"));
        let t = Instant::now();
        w.wait();
        assert!(t.elapsed() >= INTERVAL - Duration::from_millis(10));
    }
}

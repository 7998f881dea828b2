//! Advisory file locks (flock via fs2). A lock is released when its `Lock` is
//! dropped or its process dies, so a kill -9 never leaves a store locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use fs2::FileExt;

#[derive(Debug)]
pub struct Lock {
    file: File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

impl Lock {
    /// Takes the lock on `path` (created if missing). Tries first; on contention
    /// says on stderr what it waits for (when `what` is given), then blocks.
    pub fn acquire(path: &Path, mode: Mode, what: Option<&str>) -> Result<Lock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .with_context(|| format!("open lock {}", path.display()))?;
        let tried = match mode {
            Mode::Shared => FileExt::try_lock_shared(&file),
            Mode::Exclusive => FileExt::try_lock_exclusive(&file),
        };
        match tried {
            Ok(()) => return Ok(Lock { file }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
            Err(e) => return Err(e).with_context(|| format!("lock {}", path.display())),
        }
        if let Some(what) = what {
            crate::output::note(&format!("waiting for the lock on {what}"));
        }
        match mode {
            Mode::Shared => FileExt::lock_shared(&file),
            Mode::Exclusive => FileExt::lock_exclusive(&file),
        }
        .with_context(|| format!("lock {}", path.display()))?;
        Ok(Lock { file })
    }

    /// Takes the lock only if nobody holds it.
    pub fn try_acquire(path: &Path, mode: Mode) -> Result<Option<Lock>> {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("open lock {}", path.display())),
        };
        let r = match mode {
            Mode::Shared => FileExt::try_lock_shared(&file),
            Mode::Exclusive => FileExt::try_lock_exclusive(&file),
        };
        match r {
            Ok(()) => Ok(Some(Lock { file })),
            Err(_) => Ok(None),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_releases() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let a = Lock::acquire(&p, Mode::Exclusive, None).unwrap();
        assert!(Lock::try_acquire(&p, Mode::Shared).unwrap().is_none());
        drop(a);
        let s1 = Lock::try_acquire(&p, Mode::Shared).unwrap();
        let s2 = Lock::try_acquire(&p, Mode::Shared).unwrap();
        assert!(s1.is_some() && s2.is_some());
    }
}

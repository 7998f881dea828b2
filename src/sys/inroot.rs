//! Opening a file for reading by a path resolved inside a root directory
//! (openat2 with RESOLVE_IN_ROOT): what `COPY --chown=NAME` needs to read an
//! image's /etc/passwd without ever reaching the host's through a symlink.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

/// Opens `path` read-only, resolved as if `root` were "/" (".." and absolute
/// symlinks stay inside; magic links refused). O_NONBLOCK keeps a FIFO planted
/// at the path from blocking the open; the caller checks the file type.
pub fn open_read_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    super::mount::openat2_in_root(root, path, flags).map(File::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", dir.path().join("rel")).unwrap();
        let root = File::open(dir.path()).unwrap();
        for p in ["abs", "rel", "/etc/passwd", "../etc/passwd"] {
            let mut s = String::new();
            open_read_in_root(root.as_fd(), Path::new(p))
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(s, "inside", "{p}");
        }
        let e = open_read_in_root(root.as_fd(), Path::new("missing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}

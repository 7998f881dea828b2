//! Working containers: the containers a build runs its steps in.
//!
//! A working container is an ordinary container record of the store (so RUN
//! gets exactly the isolation of `run`), made from the layers and config of the
//! build so far. RUN starts it in the foreground; COPY and ADD mount its root
//! filesystem in a private mount namespace and write into it; either way its
//! upper directory then becomes the step's layer. With `--layers=false` the
//! upper directory is carried from one working container to the next and
//! committed once.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::ContainerOptions;
use crate::container::create::Base;
use crate::container::{self, Container};
use crate::layers::store::LayerRecord;
use crate::store::{Driver, Store};

/// Paths the runtime may create in the root filesystem to mount something on
/// (a file or directory stub). They are removed from the upper directory after
/// RUN unless the step itself filled them, so that they never reach a layer.
const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
    "/dev",
    "/run/.containerenv",
];

pub struct Working<'a> {
    store: &'a Store,
    pub c: Container,
    removed: bool,
}

impl<'a> Working<'a> {
    /// Creates a working container from `base` with `opts`, running `args`
    /// when started. A `carried` upper directory (from the previous step of a
    /// `--layers=false` build) replaces the new container's empty one.
    pub fn create(
        store: &'a Store,
        base: &Base,
        opts: &ContainerOptions,
        args: &[String],
        carried: Option<&Path>,
    ) -> Result<Working<'a>> {
        let c = crate::container::create::create_from(store, opts, base, args)?;
        let w = Working {
            store,
            c,
            removed: false,
        };
        if let Some(up) = carried {
            let mine = w.upper();
            fs::remove_dir(&mine).with_context(|| format!("remove {}", mine.display()))?;
            fs::rename(up, &mine).with_context(|| format!("move {} to {}", up.display(), mine.display()))?;
        }
        Ok(w)
    }

    pub fn dir(&self) -> PathBuf {
        self.store.container_dir(&self.c.config.id)
    }

    pub fn upper(&self) -> PathBuf {
        self.dir().join("upper")
    }

    fn is_vfs(&self) -> bool {
        self.c.config.driver == Driver::Vfs
    }

    /// Where the container's changes are: the overlay upper directory, or the
    /// whole private copy (vfs).
    fn changes_dir(&self) -> PathBuf {
        if self.is_vfs() {
            self.dir().join("rootfs")
        } else {
            self.upper()
        }
    }

    fn lowers(&self) -> Result<Vec<PathBuf>> {
        self.c
            .config
            .layers
            .iter()
            .map(|l| crate::layers::store::diff_dir(self.store, l))
            .collect()
    }

    /// Runs the container's command in the foreground; its output goes to
    /// ours unless `quiet`. Returns the exit code.
    pub fn run(&mut self, mount_points: &[String], quiet: bool) -> Result<i32> {
        let status = crate::container::runtime::run_foreground_with(self.store, &self.c.config.id, false, !quiet)?;
        let mut stubs: Vec<String> = RUNTIME_MOUNT_POINTS.iter().map(|s| s.to_string()).collect();
        stubs.extend(mount_points.iter().cloned());
        self.remove_stubs(stubs)?;
        Ok(status.code() as i32)
    }

    /// Removes empty files and directories the runtime made to mount on
    /// (and their parents it made), unless a lower layer has them as files.
    fn remove_stubs(&self, paths: Vec<String>) -> Result<()> {
        let upper = self.changes_dir();
        let lowers = self.lowers()?;
        let userxattr = self.store.rootless;
        let vfs = self.is_vfs();
        self.store.in_context(move || {
            for p in paths {
                let mut rel = PathBuf::from(p.trim_start_matches('/'));
                let mut removed = false;
                loop {
                    if rel.as_os_str().is_empty() {
                        break;
                    }
                    if !remove_stub(&upper, &rel, &lowers, userxattr, vfs) {
                        if vfs && removed {
                            // The directory only changed by the stub's coming and
                            // going: give it its times back, or vfs's comparison
                            // would put it in the layer.
                            restore_times(&upper, &rel, &lowers);
                        }
                        break;
                    }
                    removed = true;
                    match rel.parent() {
                        Some(parent) => rel = parent.to_path_buf(),
                        None => break,
                    }
                }
            }
            Ok(())
        })
    }

    /// Mounts the root filesystem (writable), and `sources` read-only (each a
    /// list of layer directories, bottom first) in a private mount namespace,
    /// then calls `f(rootfs, source roots)` there: as root of the user
    /// namespace when rootless.
    pub fn with_rootfs<F>(&self, sources: &[Vec<PathBuf>], f: F) -> Result<()>
    where
        F: FnOnce(&Path, &[PathBuf]) -> Result<()>,
    {
        let dir = self.dir();
        let lowers = self.lowers()?;
        let upper = self.upper();
        let userxattr = self.c.config.id_mapping.is_some();
        let mapping = self.c.config.id_mapping.clone();
        let sources = sources.to_vec();
        let vfs = self.is_vfs();
        crate::namespaces::userns::run_in_child(mapping.as_ref(), libc::CLONE_NEWNS, move || {
            crate::sys::mount::make_private().context("make the mount namespace private")?;
            let target = dir.join("merged");
            let work = dir.join("work");
            let empty = dir.join("empty");
            let lowers = if lowers.is_empty() {
                fs::create_dir_all(&empty).with_context(|| format!("create {}", empty.display()))?;
                vec![empty.clone()]
            } else {
                lowers
            };
            let target = if vfs {
                dir.join("rootfs")
            } else {
                crate::layers::overlay::mount(&lowers, Some((&upper, &work)), &target, userxattr)?;
                target
            };
            let mut roots = Vec::new();
            for (i, layers) in sources.iter().enumerate() {
                let root = match layers.len() {
                    0 => {
                        fs::create_dir_all(&empty).with_context(|| format!("create {}", empty.display()))?;
                        empty.clone()
                    }
                    // overlayfs wants two lowers for a read-only mount; one layer is
                    // its own root (it has no whiteouts to hide anything).
                    1 => layers[0].clone(),
                    _ => {
                        let mnt = dir.join(format!("from-{i}"));
                        fs::create_dir_all(&mnt).with_context(|| format!("create {}", mnt.display()))?;
                        crate::layers::overlay::mount(layers, None, &mnt, userxattr)?;
                        mnt
                    }
                };
                roots.push(root);
            }
            f(&target, &roots)
        })
    }

    /// Commits the upper directory as a layer on `parent`.
    pub fn commit(&self, parent: Option<&str>) -> Result<LayerRecord> {
        if self.is_vfs() {
            return crate::layers::diff::commit_container(self.store, &self.c);
        }
        crate::layers::diff::commit_upper(self.store, &self.upper(), self.store.rootless, parent)
    }

    /// Takes the upper directory out (to carry it to the next working
    /// container) and removes the container.
    pub fn take_upper(mut self, into: &Path) -> Result<()> {
        fs::rename(self.upper(), into).with_context(|| format!("move the upper directory to {}", into.display()))?;
        fs::create_dir(self.upper()).with_context(|| format!("create {}", self.upper().display()))?;
        self.remove()
    }

    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        container::ops::remove(self.store, &self.c.config.id, true, Some(0))
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            crate::output::warn(&format!("remove working container {}: {e:#}", self.c.config.name));
        }
    }
}

/// Removes `rel` from `upper` when it is a stub: an empty regular file that no
/// lower layer has, or an empty directory that overlayfs did not mark opaque
/// (vfs: that no lower layer has either, since `upper` is the whole tree).
/// Returns whether it removed something (so the caller goes on to the parent).
fn remove_stub(upper: &Path, rel: &Path, lowers: &[PathBuf], userxattr: bool, vfs: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    let p = upper.join(rel);
    let Ok(md) = fs::symlink_metadata(&p) else { return false };
    if vfs && lowers.iter().any(|l| fs::symlink_metadata(l.join(rel)).is_ok()) {
        return false;
    }
    if md.is_file() && md.len() == 0 && md.nlink() == 1 {
        let in_lower = lowers.iter().any(|l| fs::symlink_metadata(l.join(rel)).is_ok());
        return !in_lower && fs::remove_file(&p).is_ok();
    }
    if md.is_dir() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::OpenOptionsExt;
        let attr = if userxattr {
            c"user.overlay.opaque"
        } else {
            c"trusted.overlay.opaque"
        };
        let Ok(d) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&p)
        else {
            return false;
        };
        if crate::sys::fsops::fgetxattr(d.as_fd(), attr).is_ok() {
            return false;
        }
        return fs::remove_dir(&p).is_ok();
    }
    false
}

/// Sets the times of `rel` under `upper` to those of the top-most layer that
/// has it.
fn restore_times(upper: &Path, rel: &Path, lowers: &[PathBuf]) {
    let Some(md) = lowers.iter().rev().find_map(|l| fs::symlink_metadata(l.join(rel)).ok()) else {
        return;
    };
    let (Ok(m), Ok(a)) = (md.modified(), md.accessed()) else {
        return;
    };
    if let Ok(f) = fs::File::open(upper.join(rel)) {
        let _ = f.set_times(fs::FileTimes::new().set_modified(m).set_accessed(a));
    }
}

/// Removes the working containers a killed build left behind (their records
/// carry the label below and the PID of the build that made them).
pub fn sweep_stale(store: &Store) {
    let Ok(list) = container::list(store) else { return };
    for c in list {
        let Some(pid) = c.config.labels.get(BUILD_LABEL).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if c.config.labels.get(BOOT_LABEL).map(String::as_str) == Some(container::boot_id().as_str())
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        {
            continue;
        }
        let _ = container::ops::remove(store, &c.config.id, true, Some(0));
    }
}

/// Label on working containers: the PID of the build that owns them.
pub const BUILD_LABEL: &str = "io.casco.build.pid";
/// Label on working containers: the boot they were made in.
pub const BOOT_LABEL: &str = "io.casco.build.boot";

//! The container's root filesystem, assembled in the child's private mount
//! namespace before pivot_root: the rootfs mount, /proc, /dev, /sys, user
//! mounts, the files casco generates (/etc/hosts, ...), masked and read-only
//! paths. Every target is opened inside the root first (openat2 with
//! RESOLVE_IN_ROOT) and mounted through its descriptor.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag};

use super::{InitPlan, MASKED_PATHS, MountKind, MountPlan, READONLY_PATHS, RootfsPlan};
use crate::sys::mount::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, Resolve, fd_path, mount_setattr,
    open_in_root,
};

fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

fn open_root_path(root: BorrowedFd<'_>, path: &str) -> std::io::Result<OwnedFd> {
    let r = rel(path);
    if r.is_empty() {
        root.try_clone_to_owned()
    } else {
        open_in_root(root, Path::new(r), Resolve::Existing)
    }
}

fn is_dir(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .unwrap_or(false)
}

/// Opens directory `path` inside the root, creating it (and its parents) 0755
/// when missing.
pub fn ensure_dir(root: BorrowedFd<'_>, path: &str) -> Result<OwnedFd> {
    match open_root_path(root, path) {
        Ok(fd) => {
            if !is_dir(fd.as_fd()) {
                bail!("{path} in the container is not a directory");
            }
            Ok(fd)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let p = Path::new(rel(path));
            let parent = p.parent().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
            let name = p.file_name().with_context(|| format!("invalid path {path}"))?;
            let pfd = ensure_dir(root, &parent)?;
            match nix::sys::stat::mkdirat(pfd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("create {path} in the container")),
            }
            open_root_path(root, path).with_context(|| format!("open {path} in the container"))
        }
        Err(e) => Err(e).with_context(|| format!("open {path} in the container")),
    }
}

/// Opens file `path` inside the root, creating an empty one when missing.
pub fn ensure_file(root: BorrowedFd<'_>, path: &str) -> Result<OwnedFd> {
    match open_root_path(root, path) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let p = Path::new(rel(path));
            let parent = p.parent().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
            let name = p.file_name().with_context(|| format!("invalid path {path}"))?;
            let pfd = ensure_dir(root, &parent)?;
            match nix::fcntl::openat(
                pfd.as_fd(),
                name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(fd) => drop(fd),
                Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("create {path} in the container")),
            }
            open_root_path(root, path).with_context(|| format!("open {path} in the container"))
        }
        Err(e) => Err(e).with_context(|| format!("open {path} in the container")),
    }
}

fn mount_on(
    source: Option<&str>,
    target: &OwnedFd,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &str,
) -> Result<()> {
    mount(source, fd_path(target.as_fd()).as_str(), fstype, flags, data).with_context(|| format!("mount {what}"))
}

/// Mounts the root filesystem at its target and returns a descriptor of it.
fn mount_rootfs(rootfs: &RootfsPlan) -> Result<(OwnedFd, PathBuf)> {
    match rootfs {
        RootfsPlan::Overlay {
            lowers,
            upper,
            work,
            target,
            userxattr,
        } => {
            let upper_work = Some((upper.as_path(), work.as_path()));
            crate::layers::overlay::mount(lowers, upper_work, target, *userxattr)?;
            let fd = nix::fcntl::open(
                target,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", target.display()))?;
            Ok((fd, target.clone()))
        }
        RootfsPlan::Dir { dir } => {
            // pivot_root needs a mount point: bind the directory onto itself.
            mount(
                Some(dir.as_path()),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind {}", dir.display()))?;
            let fd = nix::fcntl::open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", dir.display()))?;
            Ok((fd, dir.clone()))
        }
    }
}

const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// `--privileged`: every device node of the host's /dev (and its
/// subdirectories), created anew (rootful) or bind-mounted (in a user
/// namespace, which cannot create devices).
fn copy_host_devices(root: BorrowedFd<'_>, host: &Path, inside: &str, userns: bool) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = std::fs::read_dir(host) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if inside == "/dev"
            && matches!(
                name.as_str(),
                "pts" | "shm" | "mqueue" | "hugepages" | "ptmx" | "console" | "fd" | "core"
            )
        {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let target = format!("{inside}/{name}");
        let ft = md.file_type();
        if ft.is_dir() {
            ensure_dir(root, &target)?;
            copy_host_devices(root, &e.path(), &target, userns)?;
        } else if (ft.is_char_device() || ft.is_block_device())
            && open_in_root(root, Path::new(rel(&target)), Resolve::NoFollow).is_err()
        {
            if userns {
                let f = ensure_file(root, &target)?;
                let _ = mount(
                    Some(e.path().as_path()),
                    fd_path(f.as_fd()).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                );
            } else {
                let p = Path::new(rel(&target));
                let parent = ensure_dir(
                    root,
                    &p.parent().map(|x| format!("/{}", x.display())).unwrap_or_default(),
                )?;
                let kind = if ft.is_char_device() {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let _ = nix::sys::stat::mknodat(
                    parent.as_fd(),
                    p.file_name().unwrap_or_default(),
                    kind,
                    Mode::from_bits_truncate(md.mode() & 0o7777),
                    md.rdev(),
                );
            }
        }
    }
    Ok(())
}

fn setup_dev(root: BorrowedFd<'_>, userns: bool, privileged: bool) -> Result<()> {
    let dev = ensure_dir(root, "/dev")?;
    let nosuid_strict = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    mount_on(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        nosuid_strict,
        Some("mode=755,size=65536k"),
        "tmpfs on /dev",
    )?;
    let dev = open_root_path(root, "/dev").context("open /dev")?;
    for (name, major, minor) in DEVICES {
        if userns {
            // A user namespace cannot create device nodes: bind the host's.
            let f = ensure_file(root, &format!("/dev/{name}"))?;
            mount(
                Some(format!("/dev/{name}").as_str()),
                fd_path(f.as_fd()).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("bind /dev/{name}"))?;
        } else {
            nix::sys::stat::mknodat(
                dev.as_fd(),
                name,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(major, minor),
            )
            .with_context(|| format!("create /dev/{name}"))?;
        }
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
        ("ptmx", "pts/ptmx"),
    ] {
        nix::unistd::symlinkat(target, dev.as_fd(), link).with_context(|| format!("create /dev/{link}"))?;
    }
    if privileged {
        copy_host_devices(root, Path::new("/dev"), "/dev", userns)?;
    }
    let pts = ensure_dir(root, "/dev/pts")?;
    // gid=5 (tty) only exists in a user namespace whose map includes it.
    let pts_opts = if userns {
        "newinstance,ptmxmode=0666,mode=0620"
    } else {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    };
    mount_on(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(pts_opts),
        "devpts",
    )
    .or_else(|_| {
        mount_on(
            Some("devpts"),
            &pts,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
            "devpts",
        )
    })?;
    let shm = ensure_dir(root, "/dev/shm")?;
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_on(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        safe,
        Some("mode=1777,size=65536k"),
        "tmpfs on /dev/shm",
    )?;
    let mq = ensure_dir(root, "/dev/mqueue")?;
    mount_on(Some("mqueue"), &mq, Some("mqueue"), safe, None, "mqueue on /dev/mqueue")?;
    Ok(())
}

fn setup_sys(root: BorrowedFd<'_>, plan: &InitPlan) -> Result<()> {
    let sys = ensure_dir(root, "/sys")?;
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !plan.userns || plan.new_netns {
        mount_on(
            Some("sysfs"),
            &sys,
            Some("sysfs"),
            safe | MsFlags::MS_RDONLY,
            None,
            "sysfs on /sys",
        )?;
    } else {
        // sysfs can only be mounted by the owner of the network namespace;
        // rootless with the host's network, bind the host's read-only.
        mount(
            Some("/sys"),
            fd_path(sys.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("bind /sys")?;
        let sys = open_root_path(root, "/sys").context("open /sys")?;
        mount_setattr(sys.as_fd(), true, MOUNT_ATTR_RDONLY, 0).context("make /sys read-only")?;
    }
    if plan.mount_cgroup2 {
        let cg = ensure_dir(root, "/sys/fs/cgroup")?;
        mount_on(
            Some("cgroup2"),
            &cg,
            Some("cgroup2"),
            safe | MsFlags::MS_RDONLY,
            None,
            "cgroup2 on /sys/fs/cgroup",
        )?;
    }
    Ok(())
}

fn propagation_flag(p: &str) -> Result<MsFlags> {
    Ok(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        other => bail!("unknown mount propagation {other:?}"),
    })
}

fn user_mount(root: BorrowedFd<'_>, m: &MountPlan) -> Result<()> {
    let what = format!("on {}", m.destination);
    match &m.kind {
        MountKind::Bind { source, recursive } => {
            let md = std::fs::metadata(source).with_context(|| format!("mount source {}", source.display()))?;
            let dest = if md.is_dir() {
                ensure_dir(root, &m.destination)?
            } else {
                ensure_file(root, &m.destination)?
            };
            let mut flags = MsFlags::MS_BIND;
            if *recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(source.as_path()),
                fd_path(dest.as_fd()).as_str(),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .with_context(|| format!("bind {} {what}", source.display()))?;
        }
        MountKind::Tmpfs { options } => {
            let dest = ensure_dir(root, &m.destination)?;
            mount_on(
                Some("tmpfs"),
                &dest,
                Some("tmpfs"),
                MsFlags::empty(),
                Some(options.as_str()),
                &format!("tmpfs {what}"),
            )?;
        }
    }
    let mounted = open_root_path(root, &m.destination).with_context(|| format!("open {}", m.destination))?;
    let mut set = 0;
    if m.readonly {
        set |= MOUNT_ATTR_RDONLY;
    }
    if m.nosuid {
        set |= MOUNT_ATTR_NOSUID;
    }
    if m.nodev {
        set |= MOUNT_ATTR_NODEV;
    }
    if m.noexec {
        set |= MOUNT_ATTR_NOEXEC;
    }
    if set != 0 {
        mount_setattr(mounted.as_fd(), true, set, 0).with_context(|| format!("set mount options {what}"))?;
    }
    if let Some(p) = &m.propagation {
        mount(
            None::<&str>,
            fd_path(mounted.as_fd()).as_str(),
            None::<&str>,
            propagation_flag(p)?,
            None::<&str>,
        )
        .with_context(|| format!("set propagation {p} {what}"))?;
    }
    Ok(())
}

fn mask_paths(root: BorrowedFd<'_>) -> Result<()> {
    for p in MASKED_PATHS {
        let Ok(fd) = open_in_root(root, Path::new(rel(p)), Resolve::NoFollow) else {
            continue;
        };
        if is_dir(fd.as_fd()) {
            mount_on(
                Some("tmpfs"),
                &fd,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
                &format!("tmpfs over {p}"),
            )?;
        } else {
            mount(
                Some("/dev/null"),
                fd_path(fd.as_fd()).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("mask {p}"))?;
        }
    }
    for p in READONLY_PATHS {
        let Ok(fd) = open_in_root(root, Path::new(rel(p)), Resolve::NoFollow) else {
            continue;
        };
        let path = fd_path(fd.as_fd());
        mount(
            Some(path.as_str()),
            path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind {p}"))?;
        let again = open_in_root(root, Path::new(rel(p)), Resolve::NoFollow).with_context(|| format!("open {p}"))?;
        mount_setattr(again.as_fd(), true, MOUNT_ATTR_RDONLY, 0).with_context(|| format!("make {p} read-only"))?;
    }
    Ok(())
}

/// Builds the whole tree; returns a descriptor of the root, ready for pivot.
pub fn prepare_rootfs(plan: &InitPlan) -> Result<OwnedFd> {
    // Nothing we mount may propagate back to the host.
    crate::sys::mount::make_private().context("make the mount namespace private")?;
    let (root, _target) = mount_rootfs(&plan.rootfs)?;
    let r = root.as_fd();

    let proc = ensure_dir(r, "/proc")?;
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_on(Some("proc"), &proc, Some("proc"), safe, None, "proc on /proc")?;
    setup_dev(r, plan.userns, plan.privileged)?;
    setup_sys(r, plan)?;

    // User mounts, parents before children.
    let mut mounts: Vec<&MountPlan> = plan.mounts.iter().collect();
    mounts.sort_by_key(|m| m.destination.trim_end_matches('/').matches('/').count());
    for m in mounts {
        user_mount(r, m)?;
    }
    if !plan.privileged {
        mask_paths(r)?;
    }
    if plan.readonly_root {
        let top = open_root_path(r, "/").context("open the root")?;
        mount_setattr(top.as_fd(), false, MOUNT_ATTR_RDONLY, 0).context("make the root filesystem read-only")?;
    }
    Ok(root)
}

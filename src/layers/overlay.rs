//! overlayfs: whether this host can use it for casco's store.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::namespaces::userns::{IdMapping, run_in_child};

/// Mounts a two-layer overlay in a throwaway mount namespace under `tmp`
/// (rootless: inside a single-ID user namespace, with `userxattr`, as
/// rootless containers mount it). Called once, when a store is made.
pub fn probe(tmp: &Path, rootless: bool) -> Result<()> {
    let dir = tmp.join(format!(".tmp-{}-overlay-probe", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(dir.join(d)).with_context(|| format!("create {}", dir.display()))?;
    }
    let mapping = rootless.then(|| IdMapping::single(crate::sys::geteuid(), crate::sys::getegid()));
    let d = dir.clone();
    let result = run_in_child(mapping.as_ref(), libc::CLONE_NEWNS, move || {
        use nix::mount::{MsFlags, mount};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("private mount namespace")?;
        let mut data = format!(
            "lowerdir={},upperdir={},workdir={}",
            d.join("lower").display(),
            d.join("upper").display(),
            d.join("work").display()
        );
        if rootless {
            data.push_str(",userxattr");
        }
        mount(
            Some("overlay"),
            &d.join("merged"),
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .context("mount overlay")?;
        fs::write(d.join("merged/probe"), b"ok").context("write through overlay")?;
        Ok(())
    });
    let _ = fs::remove_dir_all(&dir);
    result
}

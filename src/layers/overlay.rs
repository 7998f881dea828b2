//! overlayfs: whether this host can use it for casco's store.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::namespaces::userns::{IdMapping, run_in_child};

/// Mounts a two-layer overlay in a throwaway mount namespace under `tmp`
/// (rootless: inside a single-ID user namespace, with `userxattr`, as
/// rootless containers mount it). Called once, when a store is made.
pub fn probe(tmp: &Path, rootless: bool) -> Result<()> {
    let dir = tmp.join(format!(".tmp-{}-overlay-probe", std::process::id()));
    let _ = crate::layers::store::remove_all(&dir);
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(dir.join(d)).with_context(|| format!("create {}", dir.display()))?;
    }
    let mapping = rootless.then(|| IdMapping::single(crate::sys::geteuid(), crate::sys::getegid()));
    let d = dir.clone();
    let result = run_in_child(mapping.as_ref(), libc::CLONE_NEWNS, move || {
        use nix::mount::{MsFlags, mount};
        crate::sys::mount::make_private().context("private mount namespace")?;
        let data = options(&[d.join("lower")], Some((&d.join("upper"), &d.join("work"))), rootless);
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
    let _ = crate::layers::store::remove_all(&dir);
    result
}

/// Escapes a path for overlayfs's comma- and colon-separated options.
pub fn escape(p: &Path) -> String {
    let mut s = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// overlayfs mount options: `lowers` top first; with `upper_work` a writable
/// mount, else a read-only one; `userxattr` inside a user namespace.
pub fn options(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>, userxattr: bool) -> String {
    let list: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    let mut data = format!("lowerdir={}", list.join(":"));
    if let Some((upper, work)) = upper_work {
        data.push_str(&format!(",upperdir={},workdir={}", escape(upper), escape(work)));
    }
    if userxattr {
        data.push_str(",userxattr");
    }
    data
}

/// Mounts an overlay of `lowers` (bottom first) at `target`: writable with
/// `upper_work`, else read-only. mount(2) takes at most a page of options:
/// when the list is longer, the layers are named relative to their common
/// parent from inside it, so the caller must be a throwaway process whose
/// working directory may change.
pub fn mount(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>, target: &Path, userxattr: bool) -> Result<()> {
    use nix::mount::MsFlags;
    let top_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    let mut data = options(&top_first, upper_work, userxattr);
    if data.len() >= 4000 {
        let parent = lowers[0]
            .parent()
            .and_then(Path::parent)
            .context("layer path without parent")?;
        nix::unistd::chdir(parent).with_context(|| format!("chdir {}", parent.display()))?;
        let relative: Vec<PathBuf> = top_first
            .iter()
            .map(|l| l.strip_prefix(parent).unwrap_or(l).to_path_buf())
            .collect();
        data = options(&relative, upper_work, userxattr);
        if data.len() >= 4096 {
            anyhow::bail!("the image has too many layers ({}) for one overlay mount", lowers.len());
        }
    }
    let flags = if upper_work.is_some() {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    nix::mount::mount(Some("overlay"), target, Some("overlay"), flags, Some(data.as_str()))
        .with_context(|| format!("mount overlay on {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_and_order() {
        let lowers = vec![PathBuf::from("/l/top"), PathBuf::from("/l/a,b:c")];
        assert_eq!(options(&lowers, None, false), "lowerdir=/l/top:/l/a\\,b\\:c");
        assert_eq!(
            options(&lowers[..1], Some((Path::new("/u"), Path::new("/w"))), true),
            "lowerdir=/l/top,upperdir=/u,workdir=/w,userxattr"
        );
    }
}

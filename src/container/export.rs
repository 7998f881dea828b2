//! `export`: the container's root filesystem as one tar archive.
//!
//! The filesystem is assembled in a private mount namespace as a read-only
//! overlay whose top layer is the container's upper directory (no work
//! directory is touched, so a running container is not disturbed), then
//! archived. Rootless, this happens as root of a user namespace so that every
//! file is readable.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};

use super::Container;
use crate::store::{Driver, Store};

pub fn export(store: &Store, c: &Container, output: Option<&Path>) -> Result<()> {
    let out: OwnedFd = match output {
        Some(p) => File::create(p)
            .with_context(|| format!("create {}", p.display()))?
            .into(),
        None => std::io::stdout().as_fd().try_clone_to_owned().context("dup stdout")?,
    };
    let result = write_archive(store, c, out);
    if result.is_err()
        && let Some(p) = output
    {
        let _ = std::fs::remove_file(p);
    }
    result
}

fn write_archive(store: &Store, c: &Container, out: OwnedFd) -> Result<()> {
    let dir = store.container_dir(&c.config.id);
    let mapping = if store.rootless { Some(store.id_mapping()) } else { None };
    match c.config.driver {
        Driver::Vfs => {
            let rootfs = dir.join("rootfs");
            crate::namespaces::userns::run_in_child(mapping, 0, move || {
                let mut f = File::from(out);
                crate::layers::archive::pack_dir(&rootfs, &mut f)?;
                f.flush().context("write the archive")
            })
        }
        Driver::Overlay => {
            let mut lowers = vec![dir.join("upper")];
            for l in c.config.layers.iter().rev() {
                lowers.push(crate::layers::store::diff_dir(store, l)?);
            }
            let target = dir.join("merged");
            let userxattr = store.rootless;
            crate::namespaces::userns::run_in_child(mapping, libc::CLONE_NEWNS, move || {
                use nix::mount::{MsFlags, mount};
                crate::sys::mount::make_private().context("make the mount namespace private")?;
                let data = crate::layers::overlay::options(&lowers, None, userxattr);
                mount(
                    Some("overlay"),
                    &target,
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(data.as_str()),
                )
                .with_context(|| format!("mount the container's filesystem on {}", target.display()))?;
                let mut f = File::from(out);
                crate::layers::archive::pack_dir(&target, &mut f)?;
                f.flush().context("write the archive")
            })
        }
    }
}

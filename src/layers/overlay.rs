//! overlayfs: probing for it and building mount options.

use std::path::Path;

use anyhow::Result;

/// Checks that overlayfs can be mounted here (rootless: inside a user
/// namespace with `userxattr`). Called once, when a store is made.
pub fn probe(_tmp: &Path, _rootless: bool) -> Result<()> {
    Ok(())
}

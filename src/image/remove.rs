//! Removing images, and collecting the layers and blobs no image uses.

use std::collections::HashSet;
use std::fs;

use anyhow::{Context, Result};

use super::{ImageRecord, import::layers_gc_lock};
use crate::container;
use crate::exit::Coded;
use crate::layers::store as layer_store;
use crate::store::Store;
use crate::store::lock::Mode;

/// The containers created from an image.
pub fn users_of(store: &Store, id: &str) -> Result<Vec<container::Container>> {
    Ok(container::list(store)?
        .into_iter()
        .filter(|c| c.config.image_id == id)
        .collect())
}

/// What `rmi` did, for its output.
#[derive(Debug, Default)]
pub struct Removal {
    pub untagged: Vec<String>,
    pub deleted: Option<String>,
}

/// Removes `rec` (all its names), or with `only_name`, just that name when the
/// image has others. `force` removes the image's containers first.
pub fn remove_image(store: &Store, rec: &ImageRecord, only_name: Option<&str>, force: bool) -> Result<Removal> {
    let names = super::names_of(store, &rec.id)?;
    let mut out = Removal::default();
    if let Some(n) = only_name
        && names.len() > 1
    {
        super::remove_name(store, n)?;
        out.untagged.push(n.to_string());
        return Ok(out);
    }
    if only_name.is_none() && names.len() > 1 && !force {
        return Err(Coded::new(
            125,
            format!(
                "unable to delete image {} (must force): it is referenced by several names: {}",
                &rec.id[..12],
                names.join(", ")
            ),
        )
        .into());
    }
    // Wait for container creations from this image to finish, and hold off new ones.
    let _lock = super::lock(store, &rec.id, Mode::Exclusive)?;
    let users = users_of(store, &rec.id)?;
    if !users.is_empty() {
        if !force {
            let list: Vec<String> = users.iter().map(|c| c.config.id[..12].to_string()).collect();
            return Err(Coded::new(
                2,
                format!(
                    "image {} is in use by container(s) {}: remove them first, or use rmi -f",
                    &rec.id[..12],
                    list.join(", ")
                ),
            )
            .into());
        }
        for c in users {
            container::ops::remove(store, &c.config.id, true, Some(0))
                .with_context(|| format!("remove container {} of image {}", c.config.name, &rec.id[..12]))?;
        }
    }
    for n in &names {
        super::remove_name(store, n)?;
        out.untagged.push(n.clone());
    }
    let path = store.images_dir().join(format!("{}.json", rec.id));
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove {}", path.display())),
    }
    let _ = fs::remove_file(store.images_dir().join(format!("{}.lock", rec.id)));
    out.deleted = Some(rec.id.clone());
    collect_garbage(store)?;
    Ok(out)
}

/// Deletes layers and blobs that no image record references.
pub fn collect_garbage(store: &Store) -> Result<()> {
    let _gc = layers_gc_lock(store, Mode::Exclusive)?;
    let images = super::list(store)?;
    let mut layers: HashSet<String> = HashSet::new();
    let mut blobs: HashSet<String> = HashSet::new();
    for img in &images {
        blobs.insert(img.digest.clone());
        blobs.insert(img.config_digest());
        for l in &img.layers {
            layers.insert(l.clone());
        }
    }
    for chain in layer_store::list(store)? {
        if layers.contains(&chain) {
            if let Ok(Some(rec)) = layer_store::load(store, &chain) {
                blobs.extend(rec.blob.into_iter().chain(rec.alternates).map(|b| b.digest));
            }
            continue;
        }
        layer_store::remove_tree(store, &layer_store::layer_dir(store, &chain)?)?;
    }
    let dir = store.blobs_dir();
    for e in fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if crate::util::ids::is_full_id(&name) && !blobs.contains(&format!("sha256:{name}")) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(())
}

//! An archive's tar stream spooled to a private directory under `ROOT/tmp`,
//! so that entries can be read in any order (docker-archive's `manifest.json`
//! may come last) without holding the archive in memory.
//!
//! Entry names never become host paths: each regular file is stored under a
//! counter (`f0`, `f1`, ...) and looked up through a map of normalised
//! archive names. A name with `..` or a leading `/` makes the archive
//! refused; symbolic and hard links are recorded as archive-internal aliases,
//! resolved here (never by the kernel), and one that leads out of the archive
//! is refused too. The directory is removed when the spool is dropped.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tar::EntryType;

use crate::store::Store;
use crate::store::record::TMP_PREFIX;
use crate::util::ids;

/// How many links a name may pass through before it is a loop.
const MAX_LINK_HOPS: usize = 16;

enum Entry {
    File(PathBuf),
    /// An alias for another archive name (already normalised).
    Link(String),
}

pub struct Spool {
    dir: PathBuf,
    entries: HashMap<String, Entry>,
}

/// `a/./b//c` → `a/b/c`; refuses `..` and absolute names. `.` and `./`
/// (the root, as `tar -C dir .` writes it) become "".
fn normalise(name: &str) -> Result<String> {
    if name.starts_with('/') {
        bail!("the archive holds an absolute name {name:?}: refused");
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("the archive holds a name leading out of it ({name:?}): refused"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// The archive name a symlink at `link` pointing at `target` stands for.
fn resolve_symlink(link: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        bail!("the archive holds a symlink {link:?} to an absolute path {target:?}: refused");
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("the archive holds a symlink {link:?} leading out of it ({target:?}): refused");
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        bail!("the archive holds a symlink {link:?} to its own root: refused");
    }
    Ok(parts.join("/"))
}

impl Spool {
    /// A spool with a new directory in the store's temp space (removed on drop).
    fn empty(store: &Store) -> Result<Spool> {
        let mut r = [0u8; 8];
        crate::sys::random_bytes(&mut r);
        let dir = store
            .tmp_dir()
            .join(format!("{TMP_PREFIX}{}-{}-load", std::process::id(), ids::hex(&r)));
        fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Spool {
            dir,
            entries: HashMap::new(),
        })
    }

    /// Reads the whole (already decompressed) tar stream into the store's temp space.
    pub fn read(store: &Store, input: impl Read) -> Result<Spool> {
        let mut spool = Spool::empty(store)?;
        spool.fill(input)?;
        Ok(spool)
    }

    /// Takes an unpacked layout (an oci-dir, or an unpacked docker-archive)
    /// as it is: files are read in place, symlinks resolved inside the
    /// directory, nothing else followed.
    pub fn from_dir(store: &Store, root: &Path) -> Result<Spool> {
        let mut spool = Spool::empty(store)?;
        let mut stack = vec![(root.to_path_buf(), String::new())];
        while let Some((path, prefix)) = stack.pop() {
            for e in fs::read_dir(&path).with_context(|| format!("read {}", path.display()))? {
                let e = e.with_context(|| format!("read {}", path.display()))?;
                let file = e
                    .file_name()
                    .to_str()
                    .map(String::from)
                    .with_context(|| format!("{} holds a name that is not UTF-8", path.display()))?;
                let name = if prefix.is_empty() {
                    file
                } else {
                    format!("{prefix}/{file}")
                };
                let ft = e.file_type().with_context(|| format!("stat {}", e.path().display()))?;
                if ft.is_dir() {
                    stack.push((e.path(), name));
                } else if ft.is_symlink() {
                    let target = fs::read_link(e.path()).with_context(|| format!("read {}", e.path().display()))?;
                    let target = resolve_symlink(&name, &target.to_string_lossy())?;
                    spool.entries.insert(name, Entry::Link(target));
                } else if ft.is_file() {
                    spool.entries.insert(name, Entry::File(e.path()));
                }
            }
        }
        Ok(spool)
    }

    fn fill(&mut self, input: impl Read) -> Result<()> {
        let mut archive = tar::Archive::new(input);
        let mut n = 0u64;
        for entry in archive.entries().context("read the archive")? {
            let mut entry = entry.context("read the archive")?;
            let raw = entry.path_bytes();
            let name = std::str::from_utf8(&raw)
                .map_err(|_| anyhow::anyhow!("the archive holds a name that is not UTF-8: {:?}", raw))?
                .to_string();
            let name = normalise(&name)?;
            let kind = entry.header().entry_type();
            if name.is_empty() {
                if kind.is_dir() {
                    continue;
                }
                bail!("the archive holds a file without a name");
            }
            match kind {
                EntryType::Regular | EntryType::Continuous => {
                    let path = self.dir.join(format!("f{n}"));
                    n += 1;
                    let mut f = File::create_new(&path).with_context(|| format!("create {}", path.display()))?;
                    io::copy(&mut entry, &mut f).with_context(|| format!("read {name} from the archive"))?;
                    self.entries.insert(name, Entry::File(path));
                }
                EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .with_context(|| format!("read the target of {name}"))?
                        .with_context(|| format!("symlink {name} has no target"))?;
                    let target = resolve_symlink(&name, &target.to_string_lossy())?;
                    self.entries.insert(name, Entry::Link(target));
                }
                EntryType::Link => {
                    let target = entry
                        .link_name()
                        .with_context(|| format!("read the target of {name}"))?
                        .with_context(|| format!("hard link {name} has no target"))?;
                    let target = normalise(&target.to_string_lossy())?;
                    self.entries.insert(name, Entry::Link(target));
                }
                // Directories, devices, fifos: nothing an image archive reads.
                _ => {}
            }
        }
        Ok(())
    }

    /// The spooled file behind an archive name (links followed inside the archive).
    pub fn path(&self, name: &str) -> Result<&Path> {
        let mut cur = normalise(name)?;
        for _ in 0..MAX_LINK_HOPS {
            match self.entries.get(&cur) {
                Some(Entry::File(p)) => return Ok(p),
                Some(Entry::Link(t)) => cur = t.clone(),
                None => bail!("the archive has no file {name:?}"),
            }
        }
        bail!("the archive's links for {name:?} loop")
    }

    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Reads a small file (JSON) whole, refusing one over `limit` bytes and
    /// one that is a link (the top-level documents of an archive never are).
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let path = match self.entries.get(name) {
            Some(Entry::File(p)) => p,
            Some(Entry::Link(_)) => bail!("{name} in the archive is a link: refused"),
            None => self.path(name)?,
        };
        self.read_limited(name, path, limit)
    }

    /// Reads a small file whole, following links inside the archive.
    pub fn read_small_linked(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let path = self.path(name)?;
        self.read_limited(name, path, limit)
    }

    fn read_limited(&self, name: &str, path: &Path, limit: u64) -> Result<Vec<u8>> {
        let len = fs::metadata(path)
            .with_context(|| format!("stat {}", path.display()))?
            .len();
        if len > limit {
            bail!("{name} in the archive is {len} bytes, over the {limit}-byte limit");
        }
        fs::read(path).with_context(|| format!("read {name} from the archive"))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = crate::layers::store::remove_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_escapes_refused() {
        assert_eq!(normalise("./a//b/./c").unwrap(), "a/b/c");
        assert!(normalise("../x").is_err());
        assert!(normalise("a/../../x").is_err());
        assert!(normalise("/etc/passwd").is_err());
        assert_eq!(resolve_symlink("d/layer.tar", "../x.tar").unwrap(), "x.tar");
        assert!(resolve_symlink("layer.tar", "../x.tar").is_err());
        assert!(resolve_symlink("a", "/etc/passwd").is_err());
    }
}

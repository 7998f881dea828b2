//! Records on disk: whole-file JSON written atomically (temp file in the same
//! directory, optional fsync, rename), so a reader sees the old record or the new
//! one, never half of either, and a kill -9 at any point leaves at most a stray
//! temp file that readers ignore.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Prefix of temp files; `list` functions skip names that start with it.
pub const TMP_PREFIX: &str = ".tmp-";

/// Whether a write must survive a power cut (fsync of file and directory), or
/// only a crash of casco itself (page cache is enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    CrashSafe,
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut r = [0u8; 6];
    crate::sys::random_bytes(&mut r);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        "{TMP_PREFIX}{}-{}-{name}",
        std::process::id(),
        crate::util::ids::hex(&r)
    ))
}

/// Writes `data` to `path` atomically.
pub fn write_atomic(path: &Path, data: &[u8], durability: Durability) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
        f.write_all(data)?;
        if durability == Durability::Durable {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)?;
        if durability == Durability::Durable
            && let Some(dir) = path.parent()
        {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write {}", path.display()));
    }
    Ok(())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T, durability: Durability) -> Result<()> {
    let mut data = serde_json::to_vec_pretty(value).context("encode record")?;
    data.push(b'\n');
    write_atomic(path, &data, durability)
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let v = serde_json::from_slice(&data).with_context(|| format!("corrupt record {}", path.display()))?;
    Ok(Some(v))
}

/// Removes temp files left in `dir` by writers that died (their PID is gone).
pub fn remove_stale_tmp(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
            continue;
        };
        let pid: i32 = rest.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if pid > 0 && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), None);
        write_json(&p, &vec![1u32, 2], Durability::Durable).unwrap();
        write_json(&p, &vec![3u32], Durability::CrashSafe).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![3]));
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }

    #[test]
    fn corrupt_record_names_its_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bad.json");
        fs::write(&p, b"{").unwrap();
        let e = read_json::<Vec<u32>>(&p).unwrap_err();
        assert!(format!("{e:#}").contains("bad.json"));
    }

    #[test]
    fn stale_tmp_of_dead_writer_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(format!("{TMP_PREFIX}999999999-abc-x.json"));
        let live = d.path().join(format!("{TMP_PREFIX}{}-abc-x.json", std::process::id()));
        fs::write(&dead, b"").unwrap();
        fs::write(&live, b"").unwrap();
        remove_stale_tmp(d.path());
        assert!(!dead.exists());
        assert!(live.exists());
    }
}

//! The build cache: what a step produced, keyed by the state it started from
//! and everything that decides its outcome (the instruction with its expanded
//! arguments, the build arguments in effect, the content hash of what COPY or
//! ADD read).
//!
//! An entry is one small JSON file, `build-cache/KEY.json`, holding the whole
//! state after the step (layer chain IDs and config, history timestamps
//! included), so that an unchanged rebuild reproduces the same config bytes and
//! therefore the same image ID. Entries are written atomically and never
//! updated; a reader that finds one whose layers are gone treats it as a miss.
//! The cache does not keep layers alive: `rmi` and prune collect them as usual.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::store::record::{self, Durability};

/// The layers and config of an image being built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// Chain IDs, bottom first.
    pub layers: Vec<String>,
    /// The whole image config.
    pub config: Value,
}

impl State {
    /// A digest of the state: the parent part of every cache key.
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a State always encodes");
        hex(&Sha256::digest(&bytes))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The key of a step: sha256 over the parent state's digest and the step's
/// parts, each length-prefixed so that no two lists of parts collide.
pub fn key(parent: &State, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(parent.digest().as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

pub fn dir(store: &Store) -> PathBuf {
    store.root.join("build-cache")
}

fn entry_path(store: &Store, key: &str) -> PathBuf {
    dir(store).join(format!("{key}.json"))
}

/// The state cached under `key`, if every layer it names is still stored.
pub fn lookup(store: &Store, key: &str) -> Option<State> {
    let state: State = record::read_json(&entry_path(store, key)).ok().flatten()?;
    state
        .layers
        .iter()
        .all(|l| crate::layers::store::exists(store, l))
        .then_some(state)
}

/// Records the outcome of a step. A failure only costs a later rebuild.
pub fn record(store: &Store, key: &str, state: &State) -> Result<()> {
    let d = dir(store);
    std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
    record::write_json(&entry_path(store, key), state, Durability::CrashSafe)
}

/// Removes every entry (`system prune`, `system reset`); returns how many.
pub fn clear(store: &Store) -> Result<usize> {
    let d = dir(store);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("read {}", d.display())),
    };
    let mut n = 0;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(".json") && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_depend_on_parent_and_every_part() {
        let a = State {
            layers: vec![],
            config: json!({"config": {}}),
        };
        let mut b = a.clone();
        b.config["config"]["Env"] = json!(["A=1"]);
        assert_ne!(key(&a, &["RUN", "true"]), key(&b, &["RUN", "true"]));
        assert_ne!(key(&a, &["RUN", "true"]), key(&a, &["RUN", "false"]));
        assert_ne!(key(&a, &["ab", "c"]), key(&a, &["a", "bc"]));
        assert_eq!(key(&a, &["RUN", "true"]), key(&a.clone(), &["RUN", "true"]));
    }
}

//! registries.conf: which registries a short name is looked up in, short-name
//! aliases, and per-registry settings (location rewriting, mirrors, insecure,
//! blocked), as containers-registries.conf(5) describes them.
//!
//! Files, in the order they are merged (later ones win, like podman):
//! - `$CONTAINERS_REGISTRIES_CONF` when set: that file (it must exist) and the
//!   drop-ins of a `registries.conf.d` directory beside it, nothing else (podman
//!   would still read /etc/containers/registries.conf.d; keeping the override
//!   self-contained lets tests and scripts pin the whole configuration);
//! - otherwise `~/.config/containers/registries.conf` ($XDG_CONFIG_HOME) when it
//!   exists, instead of `/etc/containers/registries.conf`; then the drop-ins
//!   `*.conf` of /etc/containers/registries.conf.d (only when the system file
//!   was used) and of ~/.config/containers/registries.conf.d, each directory in
//!   name order; then the `[aliases]` of short-name-aliases.conf (podman's cache
//!   of chosen short names: ~/.config/containers/, or /var/cache/containers/ for
//!   root).
//!
//! Merging: `unqualified-search-registries` is replaced by a later file that
//! sets it (even to `[]`); `[[registry]]` entries are replaced by prefix;
//! aliases by name. Both the v2 format and the old v1 tables
//! (`[registries.search|insecure|block] registries = [...]`) are read.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::Endpoint;
use crate::image::reference::Reference;

/// The registry that short names fall back to when no search registries are
/// configured, and where one-component names get `library/`.
pub const DOCKER_HUB: &str = "docker.io";

/// When a mirror is used (`pull-from-mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFromMirror {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// host[:port][/path], the prefix-matched rest of the name is appended.
    pub location: String,
    pub insecure: bool,
    pub pull_from: PullFromMirror,
}

/// One `[[registry]]` table, after defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// `host[:port][/namespace...]` or `*.domain`; defaults to `location`.
    pub prefix: String,
    /// Where names under `prefix` really live; empty for a wildcard prefix
    /// (the name's own host is used).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    /// Use the mirrors only for references by digest.
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<Mirror>,
}

/// The merged configuration.
#[derive(Debug, Clone, Default)]
pub struct RegistriesConf {
    /// `unqualified-search-registries`, in order.
    pub search: Vec<String>,
    /// `[[registry]]` entries, sorted by prefix, one per prefix.
    pub registries: Vec<RegistryEntry>,
    /// Short name → fully qualified repository (no tag, no digest).
    pub aliases: BTreeMap<String, String>,
    /// The files that were read, in order (for messages).
    pub sources: Vec<PathBuf>,
}

/// Where the configuration files are; [`ConfPaths::from_env`] fills it from
/// the environment, tests fill it by hand.
#[derive(Debug, Clone)]
pub struct ConfPaths {
    /// `$CONTAINERS_REGISTRIES_CONF`.
    pub override_file: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
    pub config_home: Option<PathBuf>,
    /// `/etc/containers`.
    pub system_dir: PathBuf,
    /// Whether we run as root (the short-name alias cache lives elsewhere).
    pub root: bool,
}

impl ConfPaths {
    pub fn from_env() -> ConfPaths {
        let env_path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        ConfPaths {
            override_file: env_path("CONTAINERS_REGISTRIES_CONF"),
            config_home: env_path("XDG_CONFIG_HOME").or_else(|| env_path("HOME").map(|h| h.join(".config"))),
            system_dir: PathBuf::from("/etc/containers"),
            root: crate::sys::geteuid() == 0,
        }
    }
}

// ---- the TOML shapes ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawConf {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RawRegistry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    /// v1: `[registries.search]`, `[registries.insecure]`, `[registries.block]`.
    registries: Option<RawV1>,
}

#[derive(Deserialize, Default)]
struct RawV1 {
    search: Option<RawV1List>,
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize, Default)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

/// One file's contribution, validated.
#[derive(Default)]
struct Layer {
    search: Option<Vec<String>>,
    registries: Vec<RegistryEntry>,
    aliases: BTreeMap<String, String>,
}

fn parse_location(s: &str, what: &str) -> Result<String> {
    let s = s.trim().trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") {
        bail!("{what} {s:?}: give host[:port][/path] without a URL scheme");
    }
    if s.is_empty() {
        bail!("{what} is empty");
    }
    // host[:port][/path]: the path must be a valid repository path.
    let (host, path) = s.split_once('/').unwrap_or((s, ""));
    let probe = if path.is_empty() {
        format!("{host}/x")
    } else {
        s.to_string()
    };
    let r = Reference::parse_with_default(&probe, DOCKER_HUB).with_context(|| format!("{what} {s:?}"))?;
    if r.short {
        bail!("{what} {s:?}: the first component must be a registry host (with a '.' or a port, or localhost)");
    }
    Ok(s.to_string())
}

fn parse_layer(text: &str) -> Result<Layer> {
    let raw: RawConf = toml::from_str(text).context("parse TOML")?;
    let mut layer = Layer::default();
    let has_v2 = raw.unqualified_search_registries.is_some() || !raw.registry.is_empty();
    if let Some(v1) = raw.registries {
        if has_v2 {
            bail!("mixes the v1 [registries.*] tables with v2 settings");
        }
        let mut entries: BTreeMap<String, RegistryEntry> = BTreeMap::new();
        let lists = [(v1.insecure, true), (v1.block, false)];
        for (list, insecure) in lists {
            for host in list.map(|l| l.registries).unwrap_or_default() {
                let loc = parse_location(&host, "registry")?;
                let e = entries.entry(loc.clone()).or_insert_with(|| RegistryEntry {
                    prefix: loc.clone(),
                    location: loc,
                    insecure: false,
                    blocked: false,
                    mirror_by_digest_only: false,
                    mirrors: Vec::new(),
                });
                if insecure {
                    e.insecure = true;
                } else {
                    e.blocked = true;
                }
            }
        }
        layer.registries = entries.into_values().collect();
        if let Some(s) = v1.search {
            layer.search = Some(s.registries);
        }
    } else {
        layer.search = raw.unqualified_search_registries;
        for r in raw.registry {
            layer.registries.push(registry_entry(r)?);
        }
    }
    if let Some(search) = &mut layer.search {
        for s in search.iter_mut() {
            let host = s.trim().to_string();
            let qualified = Reference::parse_with_default(&format!("{host}/x"), DOCKER_HUB).is_ok_and(|r| !r.short);
            if host.contains('/') || !qualified {
                bail!("unqualified-search-registries: {s:?} is not a registry host[:port]");
            }
            *s = host;
        }
    }
    for (name, target) in raw.aliases {
        validate_alias(&name, &target)?;
        layer.aliases.insert(name, target);
    }
    Ok(layer)
}

fn registry_entry(r: RawRegistry) -> Result<RegistryEntry> {
    let prefix = r.prefix.trim().trim_end_matches('/').to_string();
    let wildcard = prefix.starts_with('*');
    let location = if r.location.trim().is_empty() {
        if prefix.is_empty() {
            bail!("a [[registry]] needs a location or a prefix");
        }
        if !wildcard {
            parse_location(&prefix, "[[registry]] prefix")?;
        }
        if wildcard { String::new() } else { prefix.clone() }
    } else {
        if wildcard {
            bail!("[[registry]] prefix {prefix:?}: a wildcard prefix cannot have a location");
        }
        parse_location(&r.location, "[[registry]] location")?
    };
    if wildcard {
        let rest = prefix.strip_prefix("*.").unwrap_or("");
        if rest.is_empty() || rest.contains(['*', '/']) {
            bail!("[[registry]] prefix {prefix:?}: a wildcard prefix is *.domain");
        }
    } else if !prefix.is_empty() {
        parse_location(&prefix, "[[registry]] prefix")?;
    }
    let prefix = if prefix.is_empty() { location.clone() } else { prefix };
    let mut mirrors = Vec::new();
    for m in r.mirror {
        let pull_from = match m.pull_from_mirror.as_deref() {
            None | Some("") | Some("all") => PullFromMirror::All,
            Some("digest-only") => PullFromMirror::DigestOnly,
            Some("tag-only") => PullFromMirror::TagOnly,
            Some(other) => bail!("[[registry.mirror]] pull-from-mirror {other:?}: use all, digest-only or tag-only"),
        };
        if r.mirror_by_digest_only && pull_from != PullFromMirror::All {
            bail!("[[registry]] {prefix:?}: mirror-by-digest-only and pull-from-mirror cannot both be set");
        }
        mirrors.push(Mirror {
            location: parse_location(&m.location, "[[registry.mirror]] location")?,
            insecure: m.insecure,
            pull_from,
        });
    }
    Ok(RegistryEntry {
        prefix,
        location,
        insecure: r.insecure,
        blocked: r.blocked,
        mirror_by_digest_only: r.mirror_by_digest_only,
        mirrors,
    })
}

fn validate_alias(name: &str, target: &str) -> Result<()> {
    let n = Reference::parse_with_default(name, DOCKER_HUB).with_context(|| format!("alias {name:?}"))?;
    if !n.short || name.contains([':', '@']) {
        bail!("alias {name:?}: the name must be a short name without a registry, tag or digest");
    }
    let last = target.rsplit('/').next().unwrap_or(target);
    if target.contains('@') || last.contains(':') {
        bail!("alias {name:?} = {target:?}: the target must have no tag or digest");
    }
    let t = Reference::parse_with_default(target, DOCKER_HUB).with_context(|| format!("alias {name:?}"))?;
    if t.short {
        bail!("alias {name:?} = {target:?}: the target must be fully qualified (registry/repository)");
    }
    Ok(())
}

/// `index.docker.io` and `registry-1.docker.io` are docker.io; a one-component
/// docker.io repository is `library/NAME`.
pub fn normalize_docker_hub(mut r: Reference) -> Reference {
    if r.domain == "index.docker.io" || r.domain == "registry-1.docker.io" {
        r.domain = DOCKER_HUB.to_string();
    }
    if r.domain == DOCKER_HUB && !r.path.contains('/') {
        r.path = format!("library/{}", r.path);
    }
    r
}

/// The length of `repo` (`domain/path`) that `prefix` matches, if it does.
fn prefix_match(repo: &str, prefix: &str) -> Option<usize> {
    if let Some(suffix) = prefix.strip_prefix('*') {
        // "*.example.com" matches any host[:port] below example.com.
        let domain = repo.split('/').next().unwrap_or(repo);
        let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
        return (host.ends_with(suffix) && host.len() > suffix.len()).then_some(domain.len());
    }
    if repo == prefix || (repo.starts_with(prefix) && repo[prefix.len()..].starts_with('/')) {
        Some(prefix.len())
    } else {
        None
    }
}

/// Splits `host[:port]/path` into an endpoint.
fn endpoint_at(location: &str, original: &Reference, insecure: bool) -> Result<Endpoint> {
    let Some((registry, repository)) = location.split_once('/').filter(|(_, p)| !p.is_empty()) else {
        bail!("registries.conf maps {original} to {location:?}, which names no repository");
    };
    let r = normalize_docker_hub(Reference {
        domain: registry.to_string(),
        path: repository.to_string(),
        tag: None,
        digest: None,
        short: false,
    });
    Ok(Endpoint {
        registry: r.domain,
        repository: r.path,
        insecure,
    })
}

impl RegistriesConf {
    /// Reads the files named in the module docs, from the environment.
    pub fn load() -> Result<RegistriesConf> {
        Self::load_from(&ConfPaths::from_env())
    }

    /// Reads the configuration files below `paths`.
    pub fn load_from(paths: &ConfPaths) -> Result<RegistriesConf> {
        let mut conf = RegistriesConf::default();
        let mut dropin_dirs = Vec::new();
        let mut alias_cache = None;
        let user_dir = paths.config_home.as_ref().map(|h| h.join("containers"));
        if let Some(file) = &paths.override_file {
            if !conf.merge_file(file)? {
                bail!(
                    "CONTAINERS_REGISTRIES_CONF names {}, which does not exist",
                    file.display()
                );
            }
            if let Some(dir) = file.parent() {
                dropin_dirs.push(dir.join("registries.conf.d"));
            }
        } else {
            let user_file = user_dir.as_ref().map(|d| d.join("registries.conf"));
            let used_user = match &user_file {
                Some(f) => conf.merge_file(f)?,
                None => false,
            };
            if !used_user {
                conf.merge_file(&paths.system_dir.join("registries.conf"))?;
                dropin_dirs.push(paths.system_dir.join("registries.conf.d"));
            }
            if let Some(d) = &user_dir {
                dropin_dirs.push(d.join("registries.conf.d"));
            }
            alias_cache = if paths.root {
                Some(PathBuf::from("/var/cache/containers/short-name-aliases.conf"))
            } else {
                user_dir.as_ref().map(|d| d.join("short-name-aliases.conf"))
            };
        }
        for dir in dropin_dirs {
            let mut files = match fs::read_dir(&dir) {
                Ok(rd) => rd
                    .map(|e| e.map(|e| e.path()))
                    .collect::<io::Result<Vec<_>>>()
                    .with_context(|| format!("read directory {}", dir.display()))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("read directory {}", dir.display())),
            };
            files.retain(|p| p.extension().is_some_and(|x| x == "conf"));
            files.sort();
            for f in files {
                conf.merge_file(&f)?;
            }
        }
        if let Some(cache) = alias_cache {
            conf.merge_alias_cache(&cache)?;
        }
        Ok(conf)
    }

    /// Parses one registries.conf text.
    pub fn from_toml(text: &str) -> Result<RegistriesConf> {
        let mut conf = RegistriesConf::default();
        conf.merge(parse_layer(text).context("registries.conf")?);
        Ok(conf)
    }

    /// Merges `path` if it exists; `Ok(false)` when it does not.
    fn merge_file(&mut self, path: &Path) -> Result<bool> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let layer = parse_layer(&text).with_context(|| format!("in {}", path.display()))?;
        self.merge(layer);
        self.sources.push(path.to_path_buf());
        Ok(true)
    }

    /// short-name-aliases.conf: only its `[aliases]` table counts, and it wins
    /// over registries.conf (it records the user's own choices).
    fn merge_alias_cache(&mut self, path: &Path) -> Result<()> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        #[derive(Deserialize)]
        struct Cache {
            #[serde(default)]
            aliases: BTreeMap<String, String>,
        }
        let cache: Cache = toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        for (name, target) in cache.aliases {
            validate_alias(&name, &target).with_context(|| format!("in {}", path.display()))?;
            self.aliases.insert(name, target);
        }
        self.sources.push(path.to_path_buf());
        Ok(())
    }

    fn merge(&mut self, layer: Layer) {
        if let Some(s) = layer.search {
            self.search = s;
        }
        for r in layer.registries {
            match self.registries.binary_search_by(|e| e.prefix.cmp(&r.prefix)) {
                Ok(i) => self.registries[i] = r,
                Err(i) => self.registries.insert(i, r),
            }
        }
        self.aliases.extend(layer.aliases);
    }

    /// The fully qualified references to try for `input`, in order: the alias
    /// target for an aliased short name; the name itself when it is qualified;
    /// else one per unqualified-search registry (docker.io alone when none is
    /// configured), docker.io getting `library/` for one-component names.
    pub fn candidates(&self, input: &str) -> Result<Vec<Reference>> {
        let r = Reference::parse_with_default(input, DOCKER_HUB)?;
        if !r.short {
            return Ok(vec![normalize_docker_hub(r)]);
        }
        if let Some(target) = self.aliases.get(&r.path) {
            let mut a = Reference::parse_with_default(target, DOCKER_HUB)
                .with_context(|| format!("alias {} = {target:?}", r.path))?;
            a.tag = r.tag;
            a.digest = r.digest;
            return Ok(vec![normalize_docker_hub(a)]);
        }
        let search: Vec<&str> = if self.search.is_empty() {
            vec![DOCKER_HUB]
        } else {
            self.search.iter().map(String::as_str).collect()
        };
        let mut out: Vec<Reference> = Vec::new();
        for domain in search {
            let c = normalize_docker_hub(Reference {
                domain: domain.to_string(),
                path: r.path.clone(),
                tag: r.tag.clone(),
                digest: r.digest.clone(),
                short: false,
            });
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The `[[registry]]` entry for `domain/path`: the longest matching prefix,
    /// an exact prefix winning over a wildcard of the same length.
    pub fn find_registry(&self, repository: &str) -> Option<(&RegistryEntry, usize)> {
        self.registries
            .iter()
            .filter_map(|e| prefix_match(repository, &e.prefix).map(|n| (e, n)))
            .max_by_key(|(e, n)| (*n, !e.prefix.starts_with('*')))
    }

    /// Where to pull `r` from, in order: the mirrors that apply, then the
    /// registry's location with the matched prefix rewritten. A blocked
    /// registry is an error.
    pub fn endpoints(&self, r: &Reference) -> Result<Vec<Endpoint>> {
        self.endpoints_inner(r, true)
    }

    /// Where to push `r`: the location only (mirrors are for pulling).
    pub fn push_endpoint(&self, r: &Reference) -> Result<Endpoint> {
        let mut v = self.endpoints_inner(r, false)?;
        v.pop().with_context(|| format!("no endpoint for {r}"))
    }

    fn endpoints_inner(&self, r: &Reference, with_mirrors: bool) -> Result<Vec<Endpoint>> {
        let r = normalize_docker_hub(r.clone());
        let repo = r.repository();
        let Some((entry, n)) = self.find_registry(&repo) else {
            return Ok(vec![Endpoint {
                registry: r.domain.clone(),
                repository: r.path.clone(),
                insecure: false,
            }]);
        };
        if entry.blocked {
            bail!("registry {} is blocked in registries.conf: refusing {r}", entry.prefix);
        }
        let rest = &repo[n..];
        let mut out = Vec::new();
        if with_mirrors && (!entry.mirror_by_digest_only || r.digest.is_some()) {
            for m in &entry.mirrors {
                let applies = match m.pull_from {
                    PullFromMirror::All => true,
                    PullFromMirror::DigestOnly => r.digest.is_some(),
                    PullFromMirror::TagOnly => r.digest.is_none(),
                };
                if applies {
                    out.push(endpoint_at(&format!("{}{rest}", m.location), &r, m.insecure)?);
                }
            }
        }
        let location = if entry.location.is_empty() {
            &repo[..n]
        } else {
            &entry.location
        };
        out.push(endpoint_at(&format!("{location}{rest}"), &r, entry.insecure)?);
        Ok(out)
    }

    /// Whether `registry` (host[:port]) is marked insecure: by a `[[registry]]`
    /// whose prefix covers the whole host, or as the location of an insecure
    /// registry or mirror.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host_of = |loc: &str| loc.split('/').next().unwrap_or(loc).to_string();
        if let Some((e, _)) = self.find_registry(registry)
            && e.insecure
        {
            return true;
        }
        self.registries.iter().any(|e| {
            (e.insecure && !e.location.is_empty() && host_of(&e.location) == registry)
                || e.mirrors.iter().any(|m| m.insecure && host_of(&m.location) == registry)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: Vec<Reference>) -> Vec<String> {
        v.into_iter().map(|r| r.to_string()).collect()
    }

    fn ep(registry: &str, repository: &str, insecure: bool) -> Endpoint {
        Endpoint {
            registry: registry.into(),
            repository: repository.into(),
            insecure,
        }
    }

    fn paths(dir: &Path) -> ConfPaths {
        ConfPaths {
            override_file: None,
            config_home: Some(dir.join("home/.config")),
            system_dir: dir.join("etc/containers"),
            root: false,
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn short_names_use_search_registries() {
        let c = RegistriesConf::from_toml(r#"unqualified-search-registries = ["quay.io", "docker.io"]"#).unwrap();
        assert_eq!(
            names(c.candidates("alpine").unwrap()),
            ["quay.io/alpine:latest", "docker.io/library/alpine:latest"]
        );
        assert_eq!(
            names(c.candidates("me/app:1").unwrap()),
            ["quay.io/me/app:1", "docker.io/me/app:1"]
        );
        let d = format!("sha256:{}", "b".repeat(64));
        assert_eq!(
            names(c.candidates(&format!("x@{d}")).unwrap()),
            [format!("quay.io/x@{d}"), format!("docker.io/library/x@{d}")]
        );
    }

    #[test]
    fn no_search_registries_means_docker_hub() {
        let c = RegistriesConf::from_toml("").unwrap();
        assert_eq!(
            names(c.candidates("busybox").unwrap()),
            ["docker.io/library/busybox:latest"]
        );
        let c = RegistriesConf::from_toml("unqualified-search-registries = []").unwrap();
        assert_eq!(
            names(c.candidates("busybox:1").unwrap()),
            ["docker.io/library/busybox:1"]
        );
    }

    #[test]
    fn qualified_names_are_kept_and_hub_normalised() {
        let c = RegistriesConf::from_toml(r#"unqualified-search-registries = ["quay.io"]"#).unwrap();
        assert_eq!(
            names(c.candidates("localhost:5000/a/b:t").unwrap()),
            ["localhost:5000/a/b:t"]
        );
        assert_eq!(
            names(c.candidates("docker.io/busybox").unwrap()),
            ["docker.io/library/busybox:latest"]
        );
        assert_eq!(
            names(c.candidates("index.docker.io/me/x").unwrap()),
            ["docker.io/me/x:latest"]
        );
        assert!(c.candidates("Bad Name").is_err());
    }

    #[test]
    fn aliases_win_and_keep_the_tag() {
        let c = RegistriesConf::from_toml(
            r#"
            unqualified-search-registries = ["quay.io"]
            [aliases]
            "fedora" = "registry.fedoraproject.org/fedora"
            "hub/one" = "docker.io/one"
            "#,
        )
        .unwrap();
        assert_eq!(
            names(c.candidates("fedora:40").unwrap()),
            ["registry.fedoraproject.org/fedora:40"]
        );
        assert_eq!(
            names(c.candidates("fedora").unwrap()),
            ["registry.fedoraproject.org/fedora:latest"]
        );
        assert_eq!(
            names(c.candidates("hub/one").unwrap()),
            ["docker.io/library/one:latest"]
        );
        // Aliases with a tag, or to a short name, are refused.
        assert!(RegistriesConf::from_toml("[aliases]\n\"a\" = \"quay.io/a:1\"").is_err());
        assert!(RegistriesConf::from_toml("[aliases]\n\"a\" = \"a\"").is_err());
        assert!(RegistriesConf::from_toml("[aliases]\n\"quay.io/a\" = \"quay.io/a\"").is_err());
    }

    #[test]
    fn endpoints_mirrors_then_rewritten_location() {
        let c = RegistriesConf::from_toml(
            r#"
            [[registry]]
            prefix = "example.com/foo"
            location = "internal.example.net:5000/bar"
            insecure = true
            [[registry.mirror]]
            location = "mirror.example.net/cache"
            [[registry.mirror]]
            location = "localhost:5001"
            insecure = true

            [[registry]]
            location = "example.com"
            "#,
        )
        .unwrap();
        let r = Reference::parse_with_default("example.com/foo/baz/qux:1", "x").unwrap();
        assert_eq!(
            c.endpoints(&r).unwrap(),
            [
                ep("mirror.example.net", "cache/baz/qux", false),
                ep("localhost:5001", "baz/qux", true),
                ep("internal.example.net:5000", "bar/baz/qux", true),
            ]
        );
        assert_eq!(
            c.push_endpoint(&r).unwrap(),
            ep("internal.example.net:5000", "bar/baz/qux", true)
        );
        // The prefix ends at a path separator: example.com/foobar is not under example.com/foo.
        let r = Reference::parse_with_default("example.com/foobar", "x").unwrap();
        assert_eq!(c.endpoints(&r).unwrap(), [ep("example.com", "foobar", false)]);
        // The exact repository as prefix.
        let r = Reference::parse_with_default("example.com/foo", "x").unwrap();
        assert!(c.endpoints(&r).unwrap_err().to_string().contains("names no repository"));
        // Unconfigured registries: the name as is.
        let r = Reference::parse_with_default("quay.io/a/b", "x").unwrap();
        assert_eq!(c.endpoints(&r).unwrap(), [ep("quay.io", "a/b", false)]);
    }

    #[test]
    fn docker_hub_mirror_and_library() {
        let c = RegistriesConf::from_toml(
            r#"
            [[registry]]
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.gcr.io"
            "#,
        )
        .unwrap();
        let r = Reference::parse_with_default("busybox", "docker.io").unwrap();
        let e = c.endpoints(&r).unwrap();
        assert_eq!(
            e,
            [
                ep("mirror.gcr.io", "library/busybox", false),
                ep("docker.io", "library/busybox", false)
            ]
        );
        assert_eq!(e[1].api_host(), "registry-1.docker.io");
    }

    #[test]
    fn digest_only_mirrors() {
        let c = RegistriesConf::from_toml(
            r#"
            [[registry]]
            location = "r.io"
            [[registry.mirror]]
            location = "d.io"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "t.io"
            pull-from-mirror = "tag-only"
            [[registry]]
            location = "s.io"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "m.io"
            "#,
        )
        .unwrap();
        let d = format!("sha256:{}", "c".repeat(64));
        let hosts = |s: &str| -> Vec<String> {
            let r = Reference::parse_with_default(s, "x").unwrap();
            c.endpoints(&r).unwrap().into_iter().map(|e| e.registry).collect()
        };
        assert_eq!(hosts("r.io/a:1"), ["t.io", "r.io"]);
        assert_eq!(hosts(&format!("r.io/a@{d}")), ["d.io", "r.io"]);
        assert_eq!(hosts("s.io/a:1"), ["s.io"]);
        assert_eq!(hosts(&format!("s.io/a@{d}")), ["m.io", "s.io"]);
        assert!(
            RegistriesConf::from_toml(
                "[[registry]]\nlocation=\"a.io\"\n[[registry.mirror]]\nlocation=\"b.io\"\npull-from-mirror=\"x\""
            )
            .is_err()
        );
    }

    #[test]
    fn blocked_is_a_clear_error() {
        let c = RegistriesConf::from_toml(
            r#"
            [[registry]]
            location = "bad.example.com"
            blocked = true
            [[registry]]
            prefix = "bad.example.com/ok"
            location = "bad.example.com/ok"
            "#,
        )
        .unwrap();
        let r = Reference::parse_with_default("bad.example.com/x/y", "x").unwrap();
        let err = c.endpoints(&r).unwrap_err().to_string();
        assert!(err.contains("blocked") && err.contains("bad.example.com"), "{err}");
        assert!(c.push_endpoint(&r).is_err());
        // A more specific, unblocked prefix wins.
        let r = Reference::parse_with_default("bad.example.com/ok/y", "x").unwrap();
        assert_eq!(c.endpoints(&r).unwrap(), [ep("bad.example.com", "ok/y", false)]);
    }

    #[test]
    fn wildcard_prefixes() {
        let c = RegistriesConf::from_toml(
            r#"
            [[registry]]
            prefix = "*.corp.example"
            insecure = true
            [[registry]]
            prefix = "pub.corp.example"
            location = "pub.corp.example"
            "#,
        )
        .unwrap();
        let r = Reference::parse_with_default("a.corp.example:5000/x", "x").unwrap();
        assert_eq!(c.endpoints(&r).unwrap(), [ep("a.corp.example:5000", "x", true)]);
        let r = Reference::parse_with_default("pub.corp.example/x", "x").unwrap();
        assert_eq!(c.endpoints(&r).unwrap(), [ep("pub.corp.example", "x", false)]);
        assert!(c.is_insecure("b.corp.example"));
        assert!(!c.is_insecure("corp.example"));
        assert!(RegistriesConf::from_toml("[[registry]]\nprefix=\"*.a.io\"\nlocation=\"b.io\"").is_err());
    }

    #[test]
    fn insecure_lookup() {
        let c = RegistriesConf::from_toml(
            r#"
            [[registry]]
            location = "localhost:5000"
            insecure = true
            [[registry]]
            prefix = "quay.io"
            location = "internal:5001"
            insecure = true
            [[registry.mirror]]
            location = "cache.local:80/quay"
            insecure = true
            "#,
        )
        .unwrap();
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("quay.io"));
        assert!(c.is_insecure("internal:5001"));
        assert!(c.is_insecure("cache.local:80"));
        assert!(!c.is_insecure("localhost:5001"));
        assert!(!c.is_insecure("docker.io"));
    }

    #[test]
    fn v1_format() {
        let c = RegistriesConf::from_toml(
            r#"
            [registries.search]
            registries = ["r.io", "docker.io"]
            [registries.insecure]
            registries = ["localhost:5000"]
            [registries.block]
            registries = ["evil.io"]
            "#,
        )
        .unwrap();
        assert_eq!(c.search, ["r.io", "docker.io"]);
        assert!(c.is_insecure("localhost:5000"));
        let r = Reference::parse_with_default("evil.io/x", "x").unwrap();
        assert!(c.endpoints(&r).is_err());
        assert!(
            RegistriesConf::from_toml("unqualified-search-registries=[]\n[registries.search]\nregistries=[]").is_err()
        );
    }

    #[test]
    fn malformed_configs_are_refused() {
        for bad in [
            "unqualified-search-registries = \"docker.io\"",
            "unqualified-search-registries = [\"docker.io/library\"]",
            "[[registry]]\nlocation = \"https://r.io\"",
            "[[registry]]\ninsecure = true",
            "[[registry]]\nlocation = \"r.io\"\n[[registry.mirror]]\ninsecure = true",
            "[[registry]]\nprefix = \"*.\"",
            "not toml at all [",
        ] {
            assert!(RegistriesConf::from_toml(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn user_file_replaces_system_file_and_dropins_merge() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        write(
            &p.system_dir.join("registries.conf"),
            "unqualified-search-registries = [\"sys.io\"]\n[aliases]\n\"a\" = \"sys.io/a\"",
        );
        write(
            &p.system_dir.join("registries.conf.d/10-x.conf"),
            "[[registry]]\nlocation = \"sys.io\"\ninsecure = true\n[aliases]\n\"b\" = \"sys.io/b\"",
        );
        write(
            &p.system_dir.join("registries.conf.d/20-y.conf"),
            "unqualified-search-registries = [\"two.io\"]",
        );
        write(&p.system_dir.join("registries.conf.d/ignored.txt"), "not toml [");
        let c = RegistriesConf::load_from(&p).unwrap();
        assert_eq!(c.search, ["two.io"]);
        assert!(c.is_insecure("sys.io"));
        assert_eq!(c.aliases.len(), 2);
        assert_eq!(c.sources.len(), 3);

        // User drop-ins come after the system ones and replace registries by prefix.
        let user = p.config_home.clone().unwrap().join("containers");
        write(
            &user.join("registries.conf.d/00-u.conf"),
            "[[registry]]\nlocation = \"sys.io\"\n",
        );
        let c = RegistriesConf::load_from(&p).unwrap();
        assert!(!c.is_insecure("sys.io"));
        assert_eq!(c.search, ["two.io"]);

        // A user registries.conf replaces the system file and its drop-ins.
        write(
            &user.join("registries.conf"),
            "unqualified-search-registries = [\"user.io\"]",
        );
        let c = RegistriesConf::load_from(&p).unwrap();
        assert_eq!(c.search, ["user.io"]);
        assert!(c.aliases.is_empty());
        assert_eq!(names(c.candidates("x").unwrap()), ["user.io/x:latest"]);

        // The short-name alias cache wins over registries.conf aliases.
        write(
            &user.join("registries.conf.d/50-a.conf"),
            "[aliases]\n\"x\" = \"conf.io/x\"",
        );
        write(
            &user.join("short-name-aliases.conf"),
            "[aliases]\n\"x\" = \"cache.io/x\"",
        );
        let c = RegistriesConf::load_from(&p).unwrap();
        assert_eq!(names(c.candidates("x").unwrap()), ["cache.io/x:latest"]);
    }

    #[test]
    fn env_override_is_self_contained() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = paths(dir.path());
        write(
            &p.system_dir.join("registries.conf"),
            "unqualified-search-registries = [\"sys.io\"]",
        );
        let user = p.config_home.clone().unwrap().join("containers");
        write(
            &user.join("registries.conf.d/x.conf"),
            "unqualified-search-registries = [\"user.io\"]",
        );
        let own = dir.path().join("test/registries.conf");
        write(
            &own,
            "unqualified-search-registries = [\"own.io\"]\n[[registry]]\nlocation=\"localhost:5000\"\ninsecure=true",
        );
        p.override_file = Some(own.clone());
        let c = RegistriesConf::load_from(&p).unwrap();
        assert_eq!(c.search, ["own.io"]);
        assert!(c.is_insecure("localhost:5000"));
        assert_eq!(c.sources, std::slice::from_ref(&own));
        write(
            &dir.path().join("test/registries.conf.d/1.conf"),
            "unqualified-search-registries = [\"drop.io\"]",
        );
        assert_eq!(RegistriesConf::load_from(&p).unwrap().search, ["drop.io"]);

        p.override_file = Some(dir.path().join("missing.conf"));
        let err = RegistriesConf::load_from(&p).unwrap_err().to_string();
        assert!(err.contains("missing.conf"), "{err}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        write(
            &p.system_dir.join("registries.conf"),
            "unqualified-search-registries = 3",
        );
        let err = format!("{:#}", RegistriesConf::load_from(&p).unwrap_err());
        assert!(err.contains("etc/containers/registries.conf"), "{err}");
    }

    #[test]
    fn no_files_at_all_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let c = RegistriesConf::load_from(&paths(dir.path())).unwrap();
        assert!(c.search.is_empty() && c.registries.is_empty() && c.sources.is_empty());
    }
}

//! Image references: `[domain/]path[:tag][@digest]`, parsed after the
//! distribution project's grammar (reference/regexp.go) and normalised.
//!
//! Local names without a domain get `localhost/` (what podman does for `tag`,
//! `import` and `build`); lookups of a short name try the candidates of
//! [`Reference::lookup_candidates`].

use std::fmt;

use anyhow::{Result, bail};

/// A parsed, normalised reference. `tag` is `latest` when neither a tag nor a
/// digest was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The input had no domain ("busybox", "library/busybox").
    pub short: bool,
}

const MAX_NAME: usize = 255;

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    if !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    if !b[b.len() - 1].is_ascii_lowercase() && !b[b.len() - 1].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or any number of "-".
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = !sep.is_empty() && (sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    // [\w][\w.-]{0,127}
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

fn valid_domain(d: &str) -> bool {
    // host[:port], host = dns labels or an IPv6 literal in brackets
    let (host, port) = match d.rfind(':') {
        Some(i) if !d.ends_with(']') => (&d[..i], Some(&d[i + 1..])),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']') && host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Validates a `sha256:<64 hex>` digest (other algorithms are refused: every
/// blob casco stores is verified with sha256).
pub fn validate_digest(d: &str) -> Result<()> {
    match d.strip_prefix("sha256:") {
        Some(hex) if crate::util::ids::is_full_id(hex) => Ok(()),
        _ => bail!("invalid digest {d:?}: want sha256: and 64 lowercase hex digits"),
    }
}

impl Reference {
    /// Parses `s`. A reference without a domain gets `default_domain`.
    pub fn parse_with_default(s: &str, default_domain: &str) -> Result<Reference> {
        let bad = |why: &str| anyhow::anyhow!("invalid image reference {s:?}: {why}");
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|e| bad(&e.to_string()))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(
                "the tag may hold only letters, digits, '_', '.' and '-' (at most 128)",
            ));
        }
        if name.len() > MAX_NAME {
            return Err(bad("the name is longer than 255 characters"));
        }
        let (domain, path, short) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[') =>
            {
                if !valid_domain(first) {
                    return Err(bad("the registry host is not a valid host[:port]"));
                }
                (first.to_string(), remainder.to_string(), false)
            }
            _ => (default_domain.to_string(), name.to_string(), true),
        };
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(bad(
                "repository names hold lowercase letters, digits and separators ('.', '_', '__', '-') between '/'",
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
            short,
        })
    }

    /// Parses a name for a local image (`import`, `tag`): no domain means `localhost`.
    pub fn parse_local(s: &str) -> Result<Reference> {
        Self::parse_with_default(s, "localhost")
    }

    /// `domain/path`, without tag or digest.
    /// What a registry request names: the digest when there is one (it
    /// wins over a tag), else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".into())
    }

    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Full names to look for in the local store, best first. A short name
    /// tries `localhost/`, then Docker Hub's spellings.
    pub fn lookup_candidates(&self) -> Vec<String> {
        if !self.short {
            return vec![self.to_string()];
        }
        let suffix = self.suffix();
        let mut v = vec![format!("localhost/{}{suffix}", self.path)];
        if !self.path.contains('/') {
            v.push(format!("docker.io/library/{}{suffix}", self.path));
        }
        v.push(format!("docker.io/{}{suffix}", self.path));
        v
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.domain, self.path, self.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> String {
        Reference::parse_local(s).unwrap().to_string()
    }

    #[test]
    fn normalises_local_names() {
        assert_eq!(local("busybox"), "localhost/busybox:latest");
        assert_eq!(local("me/app:1.0"), "localhost/me/app:1.0");
        assert_eq!(local("quay.io/x/y"), "quay.io/x/y:latest");
        assert_eq!(local("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(local("localhost/x"), "localhost/x:latest");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse_local(&format!("r.io/x@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = Reference::parse_local(&format!("r.io/x:v1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(Reference::parse_local("x@sha256:abc").is_err());
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "", "UPPER", "a//b", "a/", "-x", "x:", "x:-t", "x::y", "../x", "a b", "x@y",
        ] {
            assert!(Reference::parse_local(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn short_name_candidates() {
        let r = Reference::parse_local("busybox").unwrap();
        assert_eq!(
            r.lookup_candidates(),
            [
                "localhost/busybox:latest",
                "docker.io/library/busybox:latest",
                "docker.io/busybox:latest"
            ]
        );
        let r = Reference::parse_local("quay.io/a/b:1").unwrap();
        assert_eq!(r.lookup_candidates(), ["quay.io/a/b:1"]);
    }
}

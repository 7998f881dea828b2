//! Image verbs: import, images, tag, rmi, image prune.

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::each;
use crate::cli::{ImagePruneArgs, ImagesArgs, ImportArgs, RmiArgs, TagArgs};
use crate::exit::ExitStatus;
use crate::format::{self, Format};
use crate::image::{self, ImageRecord, reference::Reference, remove};
use crate::outln;
use crate::store::Store;
use crate::util::{size, time};

pub fn import(store: &Store, a: ImportArgs) -> Result<ExitStatus> {
    let id = image::import::import(
        store,
        &image::import::ImportOptions {
            source: &a.source,
            reference: a.reference.as_deref(),
            changes: &a.change,
            message: a.message.as_deref(),
        },
    )?;
    outln!("sha256:{id}")?;
    Ok(ExitStatus::Success)
}

pub fn tag(store: &Store, a: TagArgs) -> Result<ExitStatus> {
    let rec = image::resolve(store, &a.image)?;
    // Check every name before adding any.
    let refs: Vec<Reference> = a
        .names
        .iter()
        .map(|n| Reference::parse_local(n))
        .collect::<Result<_>>()?;
    for r in refs {
        if r.digest.is_some() {
            bail!("tag {r}: a tag cannot contain a digest");
        }
        image::set_name(store, &r.to_string(), &rec.id)?;
    }
    Ok(ExitStatus::Success)
}

pub fn rmi(store: &Store, a: RmiArgs) -> Result<ExitStatus> {
    let list: Vec<String> = if a.all {
        image::list(store)?.into_iter().map(|r| r.id).collect()
    } else {
        if a.images.is_empty() {
            bail!("give at least one image name or ID, or --all");
        }
        a.images.clone()
    };
    each(&list, |q| {
        let rec = match image::resolve(store, q) {
            Ok(r) => r,
            Err(e) if e.downcast_ref::<image::ImageNotFound>().is_some() => {
                if a.ignore {
                    return Ok(());
                }
                return Err(e.context(crate::exit::Coded::new(1, "no such image")));
            }
            Err(e) => return Err(e),
        };
        // A name given as such removes that name only, when others remain.
        let as_name = Reference::parse_local(q).ok().and_then(|r| {
            r.lookup_candidates()
                .into_iter()
                .find(|n| image::id_for_name(store, n).as_deref() == Some(&rec.id))
        });
        let done = remove::remove_image(store, &rec, if a.all { None } else { as_name.as_deref() }, a.force)?;
        for u in done.untagged {
            outln!("Untagged: {u}")?;
        }
        if let Some(d) = done.deleted {
            outln!("Deleted: {d}")?;
        }
        Ok(())
    })
}

pub fn prune(store: &Store, a: ImagePruneArgs) -> Result<ExitStatus> {
    let removed = prune_images(store, a.all)?;
    for id in removed {
        outln!("{id}")?;
    }
    Ok(ExitStatus::Success)
}

/// Removes unnamed images (all unused ones with `all`) that no container
/// uses; returns their IDs.
pub fn prune_images(store: &Store, all: bool) -> Result<Vec<String>> {
    let names = image::names_by_id(store)?;
    let used: std::collections::HashSet<String> = crate::container::list(store)?
        .into_iter()
        .map(|c| c.config.image_id)
        .collect();
    let mut removed = Vec::new();
    for rec in image::list(store)? {
        let named = names.get(&rec.id).is_some_and(|n| !n.is_empty());
        if used.contains(&rec.id) || (named && !all) {
            continue;
        }
        remove::remove_image(store, &rec, None, true)?;
        removed.push(rec.id);
    }
    Ok(removed)
}

fn split_name(n: &str) -> (String, String) {
    match Reference::parse_local(n) {
        Ok(r) => (r.repository(), r.tag.clone().unwrap_or_else(|| "<none>".into())),
        Err(_) => (n.to_string(), "<none>".into()),
    }
}

/// The REPOSITORY column of an image without a name: the repository it was
/// pulled from by digest, as podman shows it, or `<none>`.
fn untagged_repo(rec: &ImageRecord) -> String {
    rec.repo_digests
        .first()
        .and_then(|d| d.split('@').next())
        .unwrap_or("<none>")
        .to_string()
}

fn image_json(rec: &ImageRecord, names: &[String], config: &Value, containers: usize) -> Value {
    json!({
        "Id": rec.id,
        "ParentId": "",
        "RepoTags": names,
        "RepoDigests": rec.repo_digests(names),
        "Size": rec.size,
        "SharedSize": 0,
        "VirtualSize": rec.size,
        "Labels": config["config"]["Labels"],
        "Containers": containers,
        "Names": names,
        "Digest": rec.digest,
        "History": names,
        "Created": rec.created / 1_000_000_000,
        "CreatedAt": time::rfc3339_nanos(rec.created),
    })
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Created", "CREATED"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Digest", "DIGEST"),
];

fn image_filter(rec: &ImageRecord, names: &[String], config: &Value, f: &str) -> Result<bool> {
    let (k, v) = f
        .split_once('=')
        .with_context(|| format!("invalid --filter {f:?}: want KEY=VALUE"))?;
    Ok(match k {
        "dangling" => match v {
            "true" => names.is_empty(),
            "false" => !names.is_empty(),
            _ => bail!("invalid --filter dangling={v}: use true or false"),
        },
        "reference" => names.iter().any(|n| reference_matches(n, v)),
        "label" => {
            let labels = &config["config"]["Labels"];
            match v.split_once('=') {
                Some((lk, lv)) => labels[lk].as_str() == Some(lv),
                None => labels.get(v).is_some(),
            }
        }
        "id" => rec.id.starts_with(v),
        other => bail!("unknown --filter {other:?}: use dangling, reference, label or id"),
    })
}

/// podman's reference filter: a glob over the name, matched against the full
/// name and the name without its domain, with or without the tag.
fn reference_matches(name: &str, pattern: &str) -> bool {
    let (repo, tag) = split_name(name);
    let short = repo.split_once('/').map(|x| x.1).unwrap_or(&repo).to_string();
    let last = repo.rsplit('/').next().unwrap_or(&repo).to_string();
    let cands = [
        name.to_string(),
        repo.clone(),
        short.clone(),
        format!("{short}:{tag}"),
        last.clone(),
        format!("{last}:{tag}"),
    ];
    cands.iter().any(|c| glob(pattern, c))
}

fn glob(p: &str, s: &str) -> bool {
    let (p, s) = (p.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

pub fn images(store: &Store, a: ImagesArgs) -> Result<ExitStatus> {
    let fmt = format::parse(a.format.as_deref())?;
    let names = image::names_by_id(store)?;
    let mut containers: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for c in crate::container::list(store)? {
        *containers.entry(c.config.image_id).or_default() += 1;
    }
    let mut rows: Vec<(ImageRecord, Vec<String>, Value)> = Vec::new();
    for rec in image::list(store)? {
        let n = names.get(&rec.id).cloned().unwrap_or_default();
        let cfg = image::config(store, &rec)?;
        let mut keep = true;
        for f in &a.filter {
            keep &= image_filter(&rec, &n, &cfg, f)?;
        }
        if let Some(r) = &a.reference {
            keep &= n.iter().any(|x| reference_matches(x, r));
        }
        if keep {
            rows.push((rec, n, cfg));
        }
    }
    let now = time::now_nanos();
    let mut out = std::io::stdout().lock();
    let short = |id: &str| {
        if a.no_trunc {
            format!("sha256:{id}")
        } else {
            id[..12].to_string()
        }
    };
    if a.quiet {
        for (rec, _, _) in &rows {
            writeln!(out, "{}", short(&rec.id))?;
        }
        return Ok(ExitStatus::Success);
    }
    match fmt {
        Format::Json => {
            let v: Vec<Value> = rows
                .iter()
                .map(|(r, n, c)| image_json(r, n, c, containers.get(&r.id).copied().unwrap_or(0)))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Format::Template { tmpl, table } => {
            let mut data = Vec::new();
            for (r, n, c) in &rows {
                let list = if n.is_empty() { vec![String::new()] } else { n.clone() };
                for name in list {
                    let (repo, tag) = if name.is_empty() {
                        (untagged_repo(r), "<none>".into())
                    } else {
                        split_name(&name)
                    };
                    let mut v = image_json(r, n, c, containers.get(&r.id).copied().unwrap_or(0));
                    let o = v.as_object_mut().expect("object");
                    o.insert("ID".into(), json!(short(&r.id)));
                    o.insert("Repository".into(), json!(repo));
                    o.insert("Tag".into(), json!(tag));
                    o.insert("Created".into(), json!(time::ago(r.created, now)));
                    o.insert("CreatedSince".into(), json!(time::ago(r.created, now)));
                    o.insert("CreatedAt".into(), json!(time::human_timestamp(r.created)));
                    o.insert("Size".into(), json!(size::human_size(r.size)));
                    data.push(v);
                }
            }
            out.write_all(format::render_rows(&tmpl, table, IMAGE_HEADERS, &data)?.as_bytes())?;
        }
        Format::Default => {
            let mut text = String::from(if a.digests {
                "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE\n"
            } else {
                "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n"
            });
            for (r, n, _) in &rows {
                let list: Vec<(String, String)> = if n.is_empty() {
                    vec![(untagged_repo(r), "<none>".into())]
                } else {
                    n.iter().map(|x| split_name(x)).collect()
                };
                for (repo, tag) in list {
                    let digest = if a.digests {
                        format!("{}\t", r.digest)
                    } else {
                        String::new()
                    };
                    text.push_str(&format!(
                        "{repo}\t{tag}\t{digest}{}\t{}\t{}\n",
                        short(&r.id),
                        time::ago(r.created, now),
                        size::human_size(r.size)
                    ));
                }
            }
            out.write_all(format::align_tabs(&text).as_bytes())?;
        }
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs() {
        assert!(reference_matches("localhost/busybox:latest", "busybox"));
        assert!(reference_matches("localhost/busybox:latest", "busy*"));
        assert!(reference_matches(
            "localhost/busybox:latest",
            "localhost/busybox:latest"
        ));
        assert!(reference_matches("quay.io/a/b:1", "a/b:1"));
        assert!(!reference_matches("localhost/busybox:latest", "alpine"));
    }
}

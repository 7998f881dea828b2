//! Verbs about a container's or image's layers: `commit` (a container's
//! changes become an image), `diff` (which paths they touch) and `history`
//! (an image's history entries with their layers).

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::cli::{CommitArgs, DiffArgs, HistoryArgs};
use crate::container::{self, Container, Status};
use crate::exit::ExitStatus;
use crate::format::{self, Format};
use crate::image::{self, ImageRecord, change, import::layers_gc_lock, reference::Reference};
use crate::layers::diff::{self as layer_diff, Change, ChangeKind};
use crate::layers::ingest::{self, Expect};
use crate::layers::store::{self as layer_store, LayerRecord};
use crate::store::Store;
use crate::store::lock::Mode;
use crate::util::{size, time};

/// What podman's history shows as the command of a commit (buildah's default).
const COMMIT_CREATED_BY: &str = "/bin/sh";

pub fn commit(store: &Store, a: CommitArgs) -> Result<ExitStatus> {
    let docker_format = match a.format.as_str() {
        "oci" => false,
        "docker" => true,
        other => bail!("unrecognized image format {other:?}"),
    };
    if a.message.is_some() && !docker_format {
        bail!("messages are only compatible with the docker image format (-f docker)");
    }
    // Check the name before any work.
    let name = a.image.as_deref().map(Reference::parse_local).transpose()?;
    if let Some(r) = &name
        && r.digest.is_some()
    {
        bail!("commit {r}: an image name cannot contain a digest");
    }
    let c = container::resolve(store, &a.container)?;
    let _lock = container::lock(store, &c.config.id)?;
    // Re-read under the lock: the state may have moved on.
    let mut c =
        container::load(store, &c.config.id)?.ok_or_else(|| container::ContainerNotFound(a.container.clone()))?;
    container::refresh(&mut c);
    if c.state.status == Status::Removing {
        bail!("container {} is being removed", c.config.name);
    }

    let now = time::now_nanos();
    let mut config = image_config(store, &c, now, &a, docker_format)?;
    for ch in &a.change {
        change::apply(&mut config, ch).with_context(|| format!("--change {ch:?}"))?;
    }

    let progress = |line: &str| {
        if !a.quiet {
            crate::output::note(line);
        }
    };
    // Garbage collection must not take the new layer before the image exists.
    let gc = layers_gc_lock(store, Mode::Shared)?;
    let layer = {
        let _paused = Paused::new(&c, a.pause)?;
        if a.squash {
            squash(store, &c)?
        } else {
            layer_diff::commit_container(store, &c)?
        }
    };
    let mut layers: Vec<String> = if a.squash { Vec::new() } else { c.config.layers.clone() };
    layers.push(layer.chain_id.clone());
    if a.squash {
        config["rootfs"]["diff_ids"] = json!([layer.diff_id]);
        // The old entries describe layers the image no longer has.
        if let Some(h) = config["history"].as_array_mut() {
            for e in h.iter_mut() {
                e["empty_layer"] = json!(true);
            }
        }
    } else {
        push_array(&mut config["rootfs"]["diff_ids"], json!(layer.diff_id));
    }

    progress("Getting image source signatures");
    for l in &layers {
        if let Some(b) = layer_store::load(store, l)?.and_then(|r| r.blob) {
            progress(&format!("Copying blob {}", b.digest));
        }
    }
    let rec = image::create::store_image(store, &layers, &config, docker_format)?;
    drop(gc);
    progress(&format!("Copying config {}", rec.config_digest()));
    progress("Writing manifest to image destination");
    progress("Storing signatures");
    if let Some(r) = name {
        image::set_name(store, &r.to_string(), &rec.id)?;
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &rec.id).with_context(|| format!("write {}", f.display()))?;
    }
    crate::outln!("{}", rec.id)?;
    Ok(ExitStatus::Success)
}

fn push_array(v: &mut Value, item: Value) {
    if !v.is_array() {
        *v = json!([]);
    }
    if let Some(a) = v.as_array_mut() {
        a.push(item);
    }
}

/// The new image's config: the container's image's, with what podman takes
/// from the container (Env, Entrypoint, Cmd, WorkingDir, User, Labels; not
/// the stop signal), a new history entry, and author/comment.
fn image_config(store: &Store, c: &Container, now: time::Nanos, a: &CommitArgs, docker_format: bool) -> Result<Value> {
    let mut config = match image::load(store, &c.config.image_id)? {
        Some(rec) => image::config(store, &rec)?,
        None => json!({
            "architecture": image::host_arch(),
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }),
    };
    let created = time::rfc3339_nanos(now);
    config["created"] = json!(created);
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    let cfg: &mut Map<String, Value> = config["config"]
        .as_object_mut()
        .context("image config is not an object")?;
    let mut set = |key: &str, v: Value, present: bool| {
        if present {
            cfg.insert(key.into(), v);
        } else {
            cfg.remove(key);
        }
    };
    let cc = &c.config;
    set("Env", json!(cc.env), !cc.env.is_empty());
    set("Entrypoint", json!(cc.entrypoint), !cc.entrypoint.is_empty());
    set("Cmd", json!(cc.cmd), !cc.cmd.is_empty());
    set("WorkingDir", json!(cc.workdir), !cc.workdir.is_empty());
    if !cc.user.is_empty() {
        set("User", json!(cc.user), true);
    }
    if !cc.labels.is_empty() {
        let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &cc.labels {
            labels[k] = json!(v);
        }
    }
    if let Some(author) = &a.author {
        config["author"] = json!(author);
    }
    if docker_format && let Some(m) = &a.message {
        config["comment"] = json!(m);
    }
    let from = Reference::parse_local(&cc.image_name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| cc.image_name.clone());
    let mut entry = json!({"created": created, "created_by": COMMIT_CREATED_BY});
    if let Some(author) = &a.author {
        entry["author"] = json!(author);
    }
    entry["comment"] = json!(format!("FROM {from}"));
    push_array(&mut config["history"], entry);
    if !config["rootfs"].is_object() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    Ok(config)
}

/// The container's whole filesystem as one layer with no parent.
fn squash(store: &Store, c: &Container) -> Result<LayerRecord> {
    let mut r = [0u8; 8];
    crate::sys::random_bytes(&mut r);
    let tmp = store.tmp_dir().join(format!(
        "{}{}-{}-squash.tar",
        crate::store::record::TMP_PREFIX,
        crate::store::owner_pid(),
        crate::util::ids::hex(&r)
    ));
    let result = (|| {
        container::export::export(store, c, Some(&tmp))?;
        let store_c = store.clone();
        let path = tmp.clone();
        let ing = store.in_context(move || {
            let f = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
            ingest::ingest(
                &store_c,
                std::io::BufReader::with_capacity(256 * 1024, f),
                &Expect::default(),
            )
        })?;
        for w in &ing.warnings {
            crate::output::warn(w);
        }
        ingest::commit(store, ing, None)
    })();
    let _ = std::fs::remove_file(&tmp);
    result.with_context(|| format!("squash container {}", c.config.name))
}

/// A running container frozen (cgroup freezer) for as long as this lives.
struct Paused(Option<crate::cgroups::Cgroup>);

impl Paused {
    fn new(c: &Container, pause: bool) -> Result<Paused> {
        if !pause || c.state.status != Status::Running {
            return Ok(Paused(None));
        }
        let Some(paths) = &c.state.cgroup else {
            crate::output::warn(&format!(
                "container {} has no cgroup to freeze: committing it while it runs",
                c.config.name
            ));
            return Ok(Paused(None));
        };
        let cg = crate::cgroups::Manager::system()?.open(paths);
        cg.freeze()
            .with_context(|| format!("pause container {} to commit it", c.config.name))?;
        Ok(Paused(Some(cg)))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(cg) = &self.0
            && let Err(e) = cg.thaw()
        {
            crate::output::warn(&format!("{e:#}"));
        }
    }
}

/// Which kinds of object `diff` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffTarget {
    Either,
    Container,
    Image,
}

pub fn diff(store: &Store, a: DiffArgs, target: DiffTarget) -> Result<ExitStatus> {
    let json_out = match a.format.as_deref() {
        None | Some("") => false,
        Some("json") => true,
        Some(other) => bail!("unsupported --format {other:?}: use json"),
    };
    let changes = match target {
        DiffTarget::Container => layer_diff::container_changes(store, &container::resolve(store, &a.target)?)?,
        DiffTarget::Image => layer_diff::image_changes(store, &image::resolve(store, &a.target)?.layers)?,
        DiffTarget::Either => match container::resolve(store, &a.target) {
            Ok(c) => layer_diff::container_changes(store, &c)?,
            Err(e) if container::is_not_found(&e) => match image::resolve(store, &a.target) {
                Ok(rec) => layer_diff::image_changes(store, &rec.layers)?,
                Err(ie) if ie.chain().any(|x| x.is::<image::ImageNotFound>()) => {
                    bail!("{} not found: no container or image with that name or ID", a.target)
                }
                Err(ie) => return Err(ie),
            },
            Err(e) => return Err(e),
        },
    };
    let mut out = std::io::stdout().lock();
    if json_out {
        out.write_all(&diff_json(&changes)?)?;
        writeln!(out)?;
    } else {
        for c in &changes {
            writeln!(out, "{} {}", c.kind.letter(), c.path)?;
        }
    }
    Ok(ExitStatus::Success)
}

/// podman's JSON: `changed`, `added`, `deleted` (each left out when empty),
/// indented with five spaces.
fn diff_json(changes: &[Change]) -> Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        changed: Vec<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        added: Vec<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        deleted: Vec<&'a str>,
    }
    let of = |kind| -> Vec<&str> {
        changes
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.path.as_str())
            .collect()
    };
    let v = Out {
        changed: of(ChangeKind::Changed),
        added: of(ChangeKind::Added),
        deleted: of(ChangeKind::Deleted),
    };
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"     ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&v, &mut ser).context("encode the changes")?;
    Ok(buf)
}

/// An entry of `history --format json`, with podman's field names and order.
#[derive(serde::Serialize)]
struct HistoryJson<'a> {
    id: &'a str,
    created: String,
    #[serde(rename = "CreatedBy", skip_serializing_if = "str::is_empty")]
    created_by: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    size: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    comment: &'a str,
    #[serde(rename = "Created")]
    created_secs: String,
}

/// One line of `history`.
#[derive(Debug, Clone)]
struct HistoryRow {
    /// Full image ID, or `<missing>`.
    id: String,
    created: time::Nanos,
    created_by: String,
    size: u64,
    comment: String,
    tags: Vec<String>,
}

/// The history entries of an image, top first, with the layer sizes and the
/// IDs of stored images that are exactly the image up to that entry.
fn history_rows(store: &Store, rec: &ImageRecord) -> Result<Vec<HistoryRow>> {
    let config = image::config(store, rec)?;
    let names = image::names_by_id(store)?;
    let mut sizes = Vec::with_capacity(rec.layers.len());
    for l in &rec.layers {
        sizes.push(layer_store::load(store, l)?.map(|r| r.size).unwrap_or(0));
    }
    let entries: Vec<Value> = config["history"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    if entries.is_empty() {
        // No history recorded: one line per layer.
        for (i, s) in sizes.iter().enumerate().rev() {
            rows.push(HistoryRow {
                id: if i + 1 == sizes.len() {
                    rec.id.clone()
                } else {
                    "<missing>".into()
                },
                created: rec.created,
                created_by: String::new(),
                size: *s,
                comment: String::new(),
                tags: Vec::new(),
            });
        }
    } else {
        let others = image::list(store)?;
        let mut layer = 0usize;
        for (i, e) in entries.iter().enumerate() {
            let empty = e["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                layer += 1;
                sizes.get(layer - 1).copied().unwrap_or(0)
            };
            // An image whose layers and history end here.
            let id = if i + 1 == entries.len() {
                Some(rec.id.clone())
            } else {
                others
                    .iter()
                    .filter(|o| o.layers.len() == layer && rec.layers.starts_with(&o.layers))
                    .find(|o| {
                        image::config(store, o)
                            .ok()
                            .and_then(|c| c["history"].as_array().map(|h| h.len() == i + 1))
                            .unwrap_or(false)
                    })
                    .map(|o| o.id.clone())
            };
            rows.push(HistoryRow {
                tags: id.as_ref().and_then(|id| names.get(id).cloned()).unwrap_or_default(),
                id: id.unwrap_or_else(|| "<missing>".into()),
                created: e["created"]
                    .as_str()
                    .and_then(|c| time::parse_rfc3339(c).ok())
                    .unwrap_or(0),
                created_by: e["created_by"].as_str().unwrap_or_default().to_string(),
                size,
                comment: e["comment"].as_str().unwrap_or_default().to_string(),
            });
        }
        rows.reverse();
    }
    Ok(rows)
}

/// RFC 3339 in whole seconds, as Go's time.RFC3339 prints a UTC time.
fn rfc3339_secs(t: time::Nanos) -> String {
    let s = time::rfc3339_nanos(t);
    format!("{}Z", &s[..19])
}

/// podman's CREATED BY column: at most 45 characters, cut with "...".
fn truncate_created_by(s: &str) -> String {
    if s.chars().count() > 45 {
        format!("{}...", s.chars().take(42).collect::<String>())
    } else {
        s.to_string()
    }
}

const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Created", "CREATED"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
    ("Tags", "TAGS"),
];

pub fn history(store: &Store, a: HistoryArgs) -> Result<ExitStatus> {
    let fmt = format::parse(a.format.as_deref())?;
    let rec = image::resolve(store, &a.image)?;
    let rows = history_rows(store, &rec)?;
    let now = time::now_nanos();
    let id = |r: &HistoryRow| {
        if a.no_trunc || r.id == "<missing>" {
            r.id.clone()
        } else {
            r.id[..12.min(r.id.len())].to_string()
        }
    };
    let created = |r: &HistoryRow| {
        if a.human {
            time::ago(r.created, now)
        } else {
            rfc3339_secs(r.created)
        }
    };
    let created_by = |r: &HistoryRow| {
        if a.no_trunc {
            r.created_by.clone()
        } else {
            truncate_created_by(&r.created_by)
        }
    };
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", id(r))?;
        }
        return Ok(ExitStatus::Success);
    }
    match fmt {
        Format::Json => {
            let v: Vec<HistoryJson> = rows
                .iter()
                .map(|r| HistoryJson {
                    id: &r.id,
                    created: time::rfc3339_nanos(r.created),
                    created_by: &r.created_by,
                    tags: &r.tags,
                    size: r.size,
                    comment: &r.comment,
                    created_secs: rfc3339_secs(r.created),
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        }
        Format::Template { tmpl, table } => {
            let data: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "ID": id(r),
                        "Created": created(r),
                        "CreatedSince": time::ago(r.created, now),
                        "CreatedAt": time::human_timestamp(r.created),
                        "CreatedBy": created_by(r),
                        "Size": size::human_size(r.size),
                        "Comment": r.comment,
                        "Tags": r.tags,
                    })
                })
                .collect();
            out.write_all(format::render_rows(&tmpl, table, HISTORY_HEADERS, &data)?.as_bytes())?;
        }
        Format::Default => {
            let mut text = String::from("ID\tCREATED\tCREATED BY\tSIZE\tCOMMENT\n");
            for r in &rows {
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    id(r),
                    created(r),
                    created_by(r),
                    size::human_size(r.size),
                    r.comment
                ));
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
    fn created_by_is_cut_at_45_characters() {
        let long = "/bin/sh -c #(nop) ADD file:dff7d7a61f42a88a9c9bc37fcc9fb59159c42264969e7e3fd1e28d52b317f04e in /";
        assert_eq!(
            truncate_created_by(long),
            "/bin/sh -c #(nop) ADD file:dff7d7a61f42a88..."
        );
        assert_eq!(truncate_created_by(long).len(), 45);
        let exact = "x".repeat(45);
        assert_eq!(truncate_created_by(&exact), exact);
    }

    #[test]
    fn diff_json_is_podmans() {
        let ch = |p: &str, kind| Change { path: p.into(), kind };
        let v = vec![
            ch("/data", ChangeKind::Deleted),
            ch("/etc", ChangeKind::Changed),
            ch("/new", ChangeKind::Added),
        ];
        let s = String::from_utf8(diff_json(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\n     \"changed\": [\n          \"/etc\"\n     ],\n     \"added\": [\n          \"/new\"\n     ],\n     \"deleted\": [\n          \"/data\"\n     ]\n}"
        );
        assert_eq!(String::from_utf8(diff_json(&[]).unwrap()).unwrap(), "{}");
        assert_eq!(rfc3339_secs(1_714_566_896_123_456_789), "2024-05-01T12:34:56Z");
    }
}

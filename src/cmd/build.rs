//! `build`: reads the Containerfile, runs the build, names the image and
//! prints what podman prints (the steps, `COMMIT`, the tags, the ID).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::{self, BuildOptions, parser};
use crate::cli::BuildArgs;
use crate::exit::ExitStatus;
use crate::image::{self, reference::Reference};
use crate::outln;
use crate::store::Store;

/// The Containerfile: `-f` (a path, or - for stdin), else Containerfile,
/// then Dockerfile, in the context.
fn read_file(a: &BuildArgs) -> Result<(String, String, Option<PathBuf>)> {
    match a.file.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("read the Containerfile from standard input")?;
            Ok(("-".into(), text, None))
        }
        Some(f) => {
            let p = PathBuf::from(f);
            // A relative -f is taken from the current directory, then the context.
            let p = if p.exists() || p.is_absolute() {
                p
            } else {
                a.context.join(f)
            };
            let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
            Ok((f.to_string(), text, Some(p)))
        }
        None => {
            for name in ["Containerfile", "Dockerfile"] {
                let p = a.context.join(name);
                if p.is_file() {
                    let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
                    return Ok((p.display().to_string(), text, Some(p)));
                }
            }
            bail!(
                "no Containerfile or Dockerfile in {} (give one with -f)",
                a.context.display()
            )
        }
    }
}

fn pairs(list: &[String], what: &str) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--{what} {l:?}: expected KEY=VALUE"),
        })
        .collect()
}

pub fn build(store: &Store, a: BuildArgs) -> Result<ExitStatus> {
    let docker_format = match a.format.as_str() {
        "oci" => false,
        "docker" => true,
        other => bail!("--format {other:?}: use oci or docker"),
    };
    if let Some(p) = &a.platform {
        let host = format!("linux/{}", image::host_arch());
        if p != &host {
            bail!("--platform {p}: only the host platform {host} can be built");
        }
    }
    if !a.context.is_dir() {
        bail!("the build context {} is not a directory", a.context.display());
    }
    let context = a
        .context
        .canonicalize()
        .with_context(|| format!("open {}", a.context.display()))?;
    let names: Vec<Reference> = a
        .tags
        .iter()
        .map(|t| Reference::parse_local(t).with_context(|| format!("-t {t}")))
        .collect::<Result<_>>()?;
    let (name, text, file_path) = read_file(&a)?;
    let file = parser::parse(&name, &text)?;
    let o = BuildOptions {
        context,
        file,
        file_path,
        build_args: build::parse_build_args(&a.build_arg, &a.build_arg_file)?,
        target: a.target.clone(),
        no_cache: a.no_cache,
        layers: a.layers,
        pull: a.pull.clone().unwrap_or_else(|| "missing".into()),
        registry: a.registry.clone(),
        docker_format,
        quiet: a.quiet,
        labels: pairs(&a.label, "label")?,
        annotations: pairs(&a.annotation, "annotation")?,
        squash: a.squash,
        squash_all: a.squash_all,
        secrets: build::parse_secrets(&a.secret)?,
        network: a.network.clone(),
        volumes: a.volume.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
    };
    let id = build::build(store, &o)?;
    if !a.quiet {
        // The name as given (podman).
        match a.tags.first() {
            Some(n) => outln!("COMMIT {n}")?,
            None => outln!("COMMIT")?,
        }
        outln!("--> {}", &id[..11])?;
    }
    for n in &names {
        image::set_name(store, &n.to_string(), &id)?;
        if !a.quiet {
            outln!("Successfully tagged {n}")?;
        }
    }
    if let Some(f) = &a.iidfile {
        write_iidfile(f, &id)?;
    }
    outln!("{id}")?;
    Ok(ExitStatus::Success)
}

fn write_iidfile(f: &Path, id: &str) -> Result<()> {
    std::fs::write(f, format!("sha256:{id}")).with_context(|| format!("write {}", f.display()))
}

//! `build`: images from Containerfiles and Dockerfiles.
//!
//! The file is parsed ([`parser`]) and split into stages; only the stages the
//! target needs are built, in order. Each instruction is a step: its words are
//! expanded ([`expand`]) with the stage's ENV and ARG values, and it either
//! changes the config ([`config`]) or the filesystem: RUN in a working
//! container of the image so far, COPY and ADD into that container's mounted
//! root ([`copy`], [`working`]). A filesystem step commits the container's
//! upper directory as a layer. Every step's outcome is cached ([`cache`]).

pub mod cache;
pub mod config;
pub mod copy;
pub mod expand;
pub mod ignore;
pub mod parser;
mod step;
pub mod working;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::cli::RegistryOptions;
use crate::store::Store;
use crate::store::lock::Mode;
use cache::State;
use parser::{Containerfile, Instruction, Keyword};

/// Everything a build is asked to do.
pub struct BuildOptions {
    pub context: PathBuf,
    pub file: Containerfile,
    /// Where the Containerfile is (for `Containerfile.containerignore`).
    pub file_path: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// A layer per step (and the cache); false: one layer per stage.
    pub layers: bool,
    pub pull: String,
    pub registry: RegistryOptions,
    pub docker_format: bool,
    pub quiet: bool,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub squash: bool,
    pub squash_all: bool,
    pub secrets: BTreeMap<String, PathBuf>,
    pub network: Option<String>,
    pub volumes: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
}

/// Build arguments every stage may use without declaring them; they reach
/// RUN but never the cache key or the history (Docker's proxy variables).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// One `FROM` and the instructions up to the next.
pub struct Stage<'f> {
    pub index: usize,
    /// The `AS` name, lower case.
    pub name: Option<String>,
    pub from: &'f Instruction,
    pub steps: &'f [Instruction],
}

/// Splits the file into the ARGs before the first FROM and the stages.
pub fn split_stages(file: &Containerfile) -> Result<(Vec<&Instruction>, Vec<Stage<'_>>)> {
    let mut meta = Vec::new();
    let mut starts = Vec::new();
    for (i, ins) in file.instructions.iter().enumerate() {
        match ins.keyword {
            Keyword::From => starts.push(i),
            Keyword::Arg if starts.is_empty() => meta.push(ins),
            _ if starts.is_empty() => bail!(
                "{}:{}: {} before the first FROM (only ARG may come before it)",
                file.name,
                ins.line,
                ins.keyword.name()
            ),
            _ => {}
        }
    }
    if starts.is_empty() {
        bail!("{}: no FROM instruction", file.name);
    }
    let mut stages = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(file.instructions.len());
        let from = &file.instructions[s];
        let words = match &from.args {
            parser::Args::Shell(t) => t.split_whitespace().map(String::from).collect::<Vec<_>>(),
            parser::Args::Exec(v) => v.clone(),
        };
        let name = (words.len() == 3 && words[1].eq_ignore_ascii_case("as")).then(|| words[2].to_ascii_lowercase());
        if let Some(nm) = &name
            && stages.iter().any(|st: &Stage| st.name.as_deref() == Some(nm.as_str()))
        {
            bail!("{}:{}: duplicate stage name {nm:?}", file.name, from.line);
        }
        stages.push(Stage {
            index: n,
            name,
            from,
            steps: &file.instructions[s + 1..end],
        });
    }
    Ok((meta, stages))
}

/// The stage a `--from` value or a FROM image names: by name, or by index.
pub fn find_stage(stages: &[Stage], before: usize, what: &str) -> Option<usize> {
    let lower = what.to_ascii_lowercase();
    if let Some(s) = stages[..before]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(s.index);
    }
    what.parse::<usize>().ok().filter(|i| *i < before)
}

/// Builds the image and returns its ID. Tags are the caller's.
pub fn build(store: &Store, o: &BuildOptions) -> Result<String> {
    if store.driver() == crate::store::Driver::Vfs && (!o.layers || o.squash || o.squash_all) {
        bail!("--layers=false, --squash and --squash-all need the overlay storage driver (this store uses vfs)");
    }
    let (meta, stages) = split_stages(&o.file)?;
    let ignore = ignore::Matcher::load(&o.context, o.file_path.as_deref())?;
    let mut b = step::Builder::new(store, o, &stages, &ignore);
    b.define_meta_args(&meta)?;
    let target = match &o.target {
        Some(t) => stages
            .iter()
            .find(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .map(|s| s.index)
            .with_context(|| format!("the target stage {t:?} is not in {}", o.file.name))?,
        None => stages.len() - 1,
    };
    let needed = b.needed_stages(target)?;
    crate::layers::store::clean_stale_tmp(store);
    working::sweep_stale(store);
    // Layers made by the steps are referenced by no image until the end:
    // garbage collection waits for the build.
    let _gc = crate::image::import::layers_gc_lock(store, Mode::Shared)?;
    let mut last: Option<State> = None;
    for s in &stages {
        if !needed.contains(&s.index) {
            continue;
        }
        let state = b.build_stage(s, needed.len() > 1, s.index == target)?;
        b.finished(s.index, state.clone());
        last = Some(state);
    }
    let state = last.context("no stage was built")?;
    b.commit_image(state)
}

/// Build arguments given on the command line: NAME=VALUE, or NAME to copy it
/// from our environment (left out when unset).
pub fn parse_build_args(args: &[String], files: &[PathBuf]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add_build_arg(&mut out, line);
        }
    }
    for a in args {
        add_build_arg(&mut out, a);
    }
    Ok(out)
}

fn add_build_arg(out: &mut BTreeMap<String, String>, a: &str) {
    match a.split_once('=') {
        Some((k, v)) => {
            out.insert(k.to_string(), v.to_string());
        }
        None => {
            if let Ok(v) = std::env::var(a) {
                out.insert(a.to_string(), v);
            }
        }
    }
}

/// `--secret id=ID,src=PATH` (also `source=`, or `env=VAR` whose value is
/// written to a private file of the store's run root at use).
pub fn parse_secrets(specs: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => bail!("--secret {s:?}: expected id=ID,src=PATH"),
            }
        }
        let id = id.with_context(|| format!("--secret {s:?}: no id"))?;
        let src = src.with_context(|| format!("--secret {s:?}: no src"))?;
        let src = std::path::absolute(&src).unwrap_or(src);
        if !src.is_file() {
            bail!("--secret {id}: {} is not a file", src.display());
        }
        out.insert(id, src);
    }
    Ok(out)
}

/// Names used by stages: which stages a stage depends on.
fn stage_refs(ins: &Instruction) -> Vec<String> {
    let mut out = Vec::new();
    for f in &ins.flags {
        match (ins.keyword, f.name.as_str(), &f.value) {
            (Keyword::Copy, "from", Some(v)) => out.push(v.clone()),
            (Keyword::Run, "mount", Some(v)) => {
                for part in v.split(',') {
                    if let Some(x) = part.strip_prefix("from=") {
                        out.push(x.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

impl step::Builder<'_> {
    /// The stages `target` needs, itself included.
    fn needed_stages(&self, target: usize) -> Result<BTreeSet<usize>> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        let mut seen = HashSet::new();
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            needed.insert(i);
            let s = &self.stages[i];
            let base = self.base_image_name(s)?;
            if let Some(j) = find_stage(self.stages, i, &base) {
                todo.push(j);
            }
            for ins in s.steps {
                for r in stage_refs(ins) {
                    let r = self.expand_meta(&r)?;
                    if let Some(j) = find_stage(self.stages, i, &r) {
                        todo.push(j);
                    }
                }
            }
        }
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Containerfile {
        parser::parse("Containerfile", text).unwrap()
    }

    #[test]
    fn stages_split_at_from_with_names() {
        let f = file("ARG V=1\nFROM a AS Build\nRUN x\nFROM scratch\nCOPY --from=build /x /x\nCMD [\"/x\"]\n");
        let (meta, stages) = split_stages(&f).unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].name.as_deref(), Some("build"));
        assert_eq!(stages[0].steps.len(), 1);
        assert_eq!(stages[1].name, None);
        assert_eq!(stages[1].steps.len(), 2);
        assert_eq!(find_stage(&stages, 1, "BUILD"), Some(0));
        assert_eq!(find_stage(&stages, 1, "0"), Some(0));
        assert_eq!(
            find_stage(&stages, 0, "build"),
            None,
            "a stage cannot name itself or later ones"
        );
        assert_eq!(find_stage(&stages, 1, "busybox"), None);
        assert_eq!(stage_refs(&stages[1].steps[0]), vec!["build".to_string()]);
    }

    #[test]
    fn bad_files_are_refused_with_their_line() {
        let e = split_stages(&file("RUN true\nFROM a\n")).err().unwrap().to_string();
        assert!(
            e.contains("Containerfile:1") && e.contains("before the first FROM"),
            "{e}"
        );
        let e = split_stages(&file("ARG A\n")).err().unwrap().to_string();
        assert!(e.contains("no FROM"), "{e}");
        let e = split_stages(&file("FROM a AS x\nFROM b AS X\n"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("Containerfile:2") && e.contains("duplicate stage name"),
            "{e}"
        );
    }

    #[test]
    fn build_args_from_files_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("args");
        std::fs::write(&f, "# comment\nA=1\n\nB=two words\n").unwrap();
        let args = parse_build_args(&["A=3".into(), "CASCO_TEST_SURELY_UNSET".into()], &[f]).unwrap();
        assert_eq!(args.get("A").map(String::as_str), Some("3"));
        assert_eq!(args.get("B").map(String::as_str), Some("two words"));
        assert!(!args.contains_key("CASCO_TEST_SURELY_UNSET"));
    }

    #[test]
    fn secrets_need_an_id_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "x").unwrap();
        let ok = parse_secrets(&[format!("id=tok,src={}", f.display())]).unwrap();
        assert_eq!(ok.get("tok"), Some(&f));
        assert!(parse_secrets(&["src=/nonexistent".into()]).is_err());
        assert!(parse_secrets(&[format!("id=x,src={}", dir.path().join("missing").display())]).is_err());
        assert!(parse_secrets(&["id=x,bogus=1".into()]).is_err());
    }
}

//! The steps of a stage: what each instruction does to the build's state,
//! the cache key it is looked up under, and the history entry it leaves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::cache::{self, State};
use super::config as cfg;
use super::copy::{self, CopyRequest, Source};
use super::expand;
use super::ignore::Matcher;
use super::parser::{self, Args, Instruction, Keyword};
use super::working::{self, Working};
use super::{BuildOptions, PROXY_ARGS, Stage, find_stage};
use crate::cli::ContainerOptions;
use crate::container::create::Base;
use crate::exit::Coded;
use crate::image;
use crate::outln;
use crate::store::Store;
use crate::util::time;

/// The most ADD fetches from a URL.
const MAX_DOWNLOAD: u64 = 8 << 30;

pub struct Builder<'a> {
    pub store: &'a Store,
    pub o: &'a BuildOptions,
    pub stages: &'a [Stage<'a>],
    ignore: &'a Matcher,
    /// ARGs declared before the first FROM, with their values.
    meta: BTreeMap<String, Option<String>>,
    /// Build arguments some ARG consumed.
    used: HashSet<String>,
    /// Finished stages.
    results: HashMap<usize, State>,
    /// The step being run is the build's last: its ID is printed after COMMIT.
    last_step: bool,
}

/// A stage being built.
struct Run {
    state: State,
    base: Base,
    /// ARGs declared in this stage.
    args: BTreeMap<String, Option<String>>,
    shell: Vec<String>,
    /// `--layers=false`: the upper directory carried between working containers.
    carried: Option<PathBuf>,
    /// Where this stage's history starts (squashing marks from there).
    first_history: usize,
    cmd_set: bool,
    prefix: String,
    total: usize,
    number: usize,
}

/// Build-time platform arguments (the host's: only it can be built).
fn platform_args() -> BTreeMap<String, String> {
    let arch = image::host_arch();
    let mut m = BTreeMap::new();
    for p in ["TARGET", "BUILD"] {
        m.insert(format!("{p}PLATFORM"), format!("linux/{arch}"));
        m.insert(format!("{p}OS"), "linux".into());
        m.insert(format!("{p}ARCH"), arch.into());
        m.insert(format!("{p}VARIANT"), String::new());
    }
    m
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The text after the keyword, as written.
fn args_text(ins: &Instruction) -> String {
    let t = ins.original.trim_start();
    let kw = ins.keyword.name().len().min(t.len());
    t[kw..].trim().to_string()
}

impl<'a> Builder<'a> {
    pub fn new(store: &'a Store, o: &'a BuildOptions, stages: &'a [Stage<'a>], ignore: &'a Matcher) -> Builder<'a> {
        Builder {
            store,
            o,
            stages,
            ignore,
            meta: BTreeMap::new(),
            used: HashSet::new(),
            results: HashMap::new(),
            last_step: false,
        }
    }

    /// `--> ID` after a step (podman prints the last one after COMMIT).
    fn say_id(&self, state: &State) -> Result<()> {
        if self.last_step {
            return Ok(());
        }
        self.say(&format!("--> {}", &state.digest()[..11]))
    }

    fn say(&self, line: &str) -> Result<()> {
        if !self.o.quiet {
            outln!("{line}")?;
        }
        Ok(())
    }

    pub fn define_meta_args(&mut self, meta: &[&Instruction]) -> Result<()> {
        for ins in meta {
            let text = self.shell_text(ins)?;
            let pairs = {
                let vars = |n: &str| self.meta_var(n);
                expand::arg_pairs(&text, self.o.file.escape, &vars).with_context(|| self.at(ins))?
            };
            for (name, default) in pairs {
                let value = match self.o.build_args.get(&name) {
                    Some(v) => {
                        self.used.insert(name.clone());
                        Some(v.clone())
                    }
                    None => default,
                };
                self.meta.insert(name, value);
            }
        }
        Ok(())
    }

    fn meta_var(&self, name: &str) -> Option<String> {
        match self.meta.get(name) {
            Some(v) => v.clone(),
            None => platform_args().get(name).cloned(),
        }
    }

    pub fn expand_meta(&self, s: &str) -> Result<String> {
        expand::expand_word(s, self.o.file.escape, &|n| self.meta_var(n))
    }

    fn at(&self, ins: &Instruction) -> String {
        format!(
            "{}:{}: {}",
            self.o.file.name,
            ins.line,
            ins.original.lines().next().unwrap_or("")
        )
    }

    fn shell_text(&self, ins: &Instruction) -> Result<String> {
        match &ins.args {
            Args::Shell(t) => Ok(t.clone()),
            Args::Exec(_) => bail!("{}: {} takes no JSON form", self.at(ins), ins.keyword.name()),
        }
    }

    /// The image a stage's FROM names (meta ARGs expanded).
    pub fn base_image_name(&self, s: &Stage) -> Result<String> {
        let text = self.shell_text(s.from)?;
        let first = text.split_whitespace().next().unwrap_or("");
        self.expand_meta(first).with_context(|| self.at(s.from))
    }

    pub fn finished(&mut self, index: usize, state: State) {
        self.results.insert(index, state);
    }

    fn flag<'i>(ins: &'i Instruction, name: &str) -> Option<&'i str> {
        ins.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref().unwrap_or(""))
    }

    /// Builds one stage and returns its final state.
    pub fn build_stage(&mut self, s: &Stage, multi: bool, is_target: bool) -> Result<State> {
        let prefix = if multi {
            format!("[{}/{}] ", s.index + 1, self.stages.len())
        } else {
            String::new()
        };
        let total = s.steps.len() + 1;
        self.say(&format!("{prefix}STEP 1/{total}: {}", s.from.original))?;
        if let Some(p) = Self::flag(s.from, "platform") {
            let p = self.expand_meta(p)?;
            let host = format!("linux/{}", image::host_arch());
            if p != host {
                bail!(
                    "{}: only the host platform {host} can be built, not {p:?}",
                    self.at(s.from)
                );
            }
        }
        let name = self.base_image_name(s)?;
        let (mut state, base) = self.base_state(s, &name)?;
        cfg::ensure_path(&mut state.config);
        let shell = state.config["config"]
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let triggers: Vec<String> = state.config["config"]
            .get("OnBuild")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if !triggers.is_empty() {
            cfg::remove(&mut state.config, "OnBuild");
        }
        let first_history = state.config["history"].as_array().map(Vec::len).unwrap_or(0);
        let mut run = Run {
            state,
            base,
            args: BTreeMap::new(),
            shell,
            carried: None,
            first_history,
            cmd_set: false,
            prefix,
            total,
            number: 1,
        };
        let result = (|| -> Result<()> {
            for t in &triggers {
                let ins = parser::parse_instruction(&self.o.file.name, t, s.from.line, self.o.file.escape)
                    .with_context(|| format!("the ONBUILD trigger {t:?} of {name}"))?;
                self.say(&format!("{}ONBUILD: {}", run.prefix, ins.original))?;
                self.step(&mut run, &ins)?;
            }
            for (i, ins) in s.steps.iter().enumerate() {
                self.last_step = is_target && i + 1 == s.steps.len();
                run.number += 1;
                self.say(&format!(
                    "{}STEP {}/{}: {}",
                    run.prefix, run.number, run.total, ins.original
                ))?;
                self.step(&mut run, ins)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            if let Some(c) = run.carried.take() {
                let _ = crate::layers::store::remove_tree(self.store, &c);
            }
            return Err(e);
        }
        if let Some(up) = run.carried.take() {
            let layer = crate::layers::diff::commit_upper(
                self.store,
                &up,
                self.store.rootless,
                run.state.layers.last().map(String::as_str),
            );
            let _ = crate::layers::store::remove_tree(self.store, &up);
            let layer = layer?;
            cfg::add_diff_id(&mut run.state.config, &layer.diff_id);
            run.state.layers.push(layer.chain_id);
            cfg::squash_history(&mut run.state.config, run.first_history);
        }
        Ok(run.state)
    }

    /// The state a stage starts from, and what its working containers name
    /// as their image.
    fn base_state(&self, s: &Stage, name: &str) -> Result<(State, Base)> {
        if name.eq_ignore_ascii_case("scratch") {
            let state = State {
                layers: Vec::new(),
                config: cfg::scratch(),
            };
            let base = Base {
                id: String::new(),
                name: "scratch".into(),
                layers: Vec::new(),
                config: state.config.clone(),
            };
            return Ok((state, base));
        }
        if let Some(j) = find_stage(self.stages, s.index, name) {
            let state = self
                .results
                .get(&j)
                .cloned()
                .context("a stage used before it was built")?;
            let base = Base {
                id: String::new(),
                name: name.to_string(),
                layers: state.layers.clone(),
                config: state.config.clone(),
            };
            return Ok((state, base));
        }
        let (rec, matched) = self.image(name)?;
        let config = image::config(self.store, &rec)?;
        let state = State {
            layers: rec.layers.clone(),
            config: config.clone(),
        };
        let base = Base {
            id: rec.id.clone(),
            name: matched.unwrap_or_else(|| name.to_string()),
            layers: rec.layers,
            config,
        };
        Ok((state, base))
    }

    /// An image from the store, pulled under the `--pull` policy.
    fn image(&self, name: &str) -> Result<(image::ImageRecord, Option<String>)> {
        crate::cmd::registry::with_image(self.store, &self.o.registry, self.o.quiet, &self.o.pull, name, || {
            image::resolve_named(self.store, name)
        })
    }

    /// The variables words are expanded with: ENV first, then ARG.
    fn lookup(run: &Run, name: &str) -> Option<String> {
        cfg::env_value(&run.state.config, name).or_else(|| run.args.get(name).cloned().flatten())
    }

    fn expand_word(&self, run: &Run, s: &str) -> Result<String> {
        expand::expand_word(s, self.o.file.escape, &|n| Self::lookup(run, n))
    }

    fn expand_words(&self, run: &Run, ins: &Instruction) -> Result<Vec<String>> {
        match &ins.args {
            Args::Exec(v) => v.iter().map(|w| self.expand_word(run, w)).collect(),
            Args::Shell(t) => expand::expand_words(t, self.o.file.escape, &|n| Self::lookup(run, n)),
        }
    }

    /// ARGs of the stage that have values, as `K=V`, sorted.
    fn args_in_effect(run: &Run) -> Vec<String> {
        run.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    fn step(&mut self, run: &mut Run, ins: &Instruction) -> Result<()> {
        self.step_inner(run, ins)
            .with_context(|| format!("building at STEP \"{}\"", ins.original))
    }

    fn step_inner(&mut self, run: &mut Run, ins: &Instruction) -> Result<()> {
        if ins.keyword == Keyword::Arg {
            return self.arg(run, ins);
        }
        let fs_step = matches!(ins.keyword, Keyword::Run | Keyword::Copy | Keyword::Add);
        let cacheable = self.cacheable();
        // COPY/ADD read their sources before the key is known.
        let mut prepared = None;
        let mut extra = String::new();
        if matches!(ins.keyword, Keyword::Copy | Keyword::Add) {
            let p = self.prepare_copy(run, ins)?;
            extra = p.hash.clone();
            prepared = Some(p);
        }
        if ins.keyword == Keyword::Run {
            extra = self.bind_sources_hash(run, ins)?;
        }
        let mut parts: Vec<String> = vec!["casco-build-1".into(), ins.keyword.name().into(), ins.original.clone()];
        for h in &ins.heredocs {
            parts.push(format!("{}\n{}", h.name, h.content));
        }
        parts.push(Self::args_in_effect(run).join("\n"));
        parts.push(extra);
        if ins.keyword == Keyword::Run {
            parts.push(format!(
                "{:?}|{:?}|{:?}",
                self.o.network, self.o.volumes, self.o.cap_add
            ));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let key = cache::key(&run.state, &refs);
        if cacheable
            && !self.o.no_cache
            && let Some(hit) = cache::lookup(self.store, &key)
        {
            self.after_cached_step(run, ins, &hit);
            run.state = hit;
            self.say(&format!("--> Using cache {key}"))?;
            self.say_id(&run.state)?;
            return Ok(());
        }
        let created = time::rfc3339_nanos(time::now_nanos());
        let created_by = match ins.keyword {
            Keyword::Run => self.run(run, ins)?,
            Keyword::Copy | Keyword::Add => self.copy(run, ins, prepared.take().expect("prepared above"))?,
            _ => self.metadata(run, ins)?,
        };
        let empty = !fs_step || !cacheable;
        cfg::add_history(&mut run.state.config, &created, &created_by, empty);
        if cacheable {
            // Losing an entry only costs a rebuild.
            if let Err(e) = cache::record(self.store, &key, &run.state) {
                crate::output::debug(|| format!("build cache: {e:#}"));
            }
        }
        self.say_id(&run.state)?;
        Ok(())
    }

    /// Bookkeeping a cached step still needs (the state comes from the cache).
    fn after_cached_step(&self, run: &mut Run, ins: &Instruction, hit: &State) {
        match ins.keyword {
            Keyword::Cmd => run.cmd_set = true,
            Keyword::Shell => {
                if let Some(v) = hit.config["config"].get("Shell").and_then(Value::as_array) {
                    run.shell = v.iter().filter_map(|x| x.as_str().map(String::from)).collect();
                }
            }
            _ => {}
        }
    }

    fn arg(&mut self, run: &mut Run, ins: &Instruction) -> Result<()> {
        let text = self.shell_text(ins)?;
        let pairs = expand::arg_pairs(&text, self.o.file.escape, &|n| Self::lookup(run, n))?;
        for (name, default) in pairs {
            let value = match self.o.build_args.get(&name) {
                Some(v) => {
                    self.used.insert(name.clone());
                    Some(v.clone())
                }
                None => default
                    .or_else(|| self.meta.get(&name).cloned().flatten())
                    .or_else(|| platform_args().get(&name).cloned()),
            };
            run.args.insert(name, value);
        }
        // An ARG changes no config; its history entry is kept like buildah's.
        let cacheable = self.cacheable();
        let key = cache::key(
            &run.state,
            &[
                "casco-build-1",
                "ARG",
                &ins.original,
                &Self::args_in_effect(run).join("\n"),
            ],
        );
        if cacheable
            && !self.o.no_cache
            && let Some(hit) = cache::lookup(self.store, &key)
        {
            run.state = hit;
            self.say(&format!("--> Using cache {key}"))?;
            self.say_id(&run.state)?;
            return Ok(());
        }
        let created = time::rfc3339_nanos(time::now_nanos());
        let created_by = format!("/bin/sh -c #(nop) ARG {}", self.arg_names(run).join(" "));
        cfg::add_history(&mut run.state.config, &created, &created_by, true);
        if cacheable {
            let _ = cache::record(self.store, &key, &run.state);
        }
        self.say_id(&run.state)
    }

    /// Variables in a here-document: `$NAME` and `${...}` are expanded, an
    /// escaped `\$` is a dollar sign, everything else (quotes too) stays.
    fn expand_heredoc(&self, run: &Run, text: &str) -> Result<String> {
        let esc = self.o.file.escape;
        let mut out = String::with_capacity(text.len());
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == esc && chars.get(i + 1) == Some(&'$') {
                out.push('$');
                i += 2;
                continue;
            }
            if c != '$' {
                out.push(c);
                i += 1;
                continue;
            }
            let end = match chars.get(i + 1) {
                Some('{') => chars[i..].iter().position(|&x| x == '}').map(|p| i + p + 1),
                Some(x) if x.is_ascii_alphabetic() || *x == '_' => Some(
                    chars[i + 1..]
                        .iter()
                        .position(|x| !(x.is_ascii_alphanumeric() || *x == '_'))
                        .map(|p| i + 1 + p)
                        .unwrap_or(chars.len()),
                ),
                _ => None,
            };
            match end {
                Some(e) => {
                    let token: String = chars[i..e].iter().collect();
                    out.push_str(&self.expand_word(run, &token)?);
                    i = e;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// A layer per step, each cached (not `--layers=false` nor squashing).
    fn cacheable(&self) -> bool {
        self.o.layers && !self.o.squash && !self.o.squash_all
    }

    /// What buildah's ARG history lists: every argument with a value so far
    /// (the stage's, and proxy variables given), sorted.
    fn arg_names(&self, run: &Run) -> Vec<String> {
        let mut names: Vec<String> = run
            .args
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .chain(
                PROXY_ARGS
                    .iter()
                    .filter(|p| self.o.build_args.contains_key(**p))
                    .map(|p| p.to_string()),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Metadata instructions: the config changes, no layer.
    fn metadata(&mut self, run: &mut Run, ins: &Instruction) -> Result<String> {
        let nop = |s: String| format!("/bin/sh -c #(nop) {s}");
        let kw = ins.keyword.name();
        match ins.keyword {
            Keyword::Env => {
                let text = self.shell_text(ins)?;
                let pairs = expand::key_values(&text, self.o.file.escape, &|n| Self::lookup(run, n))?;
                for (k, v) in pairs {
                    let v = v.with_context(|| format!("ENV {k}: no value"))?;
                    cfg::set_env(&mut run.state.config, &k, &v);
                }
            }
            Keyword::Label => {
                let text = self.shell_text(ins)?;
                let pairs = expand::key_values(&text, self.o.file.escape, &|n| Self::lookup(run, n))?;
                for (k, v) in pairs {
                    cfg::set_label(&mut run.state.config, &k, &v.unwrap_or_default());
                }
            }
            Keyword::Expose => {
                // BuildKit splits what a variable expands to here: EXPOSE $PORTS.
                let text = self.shell_text(ins)?;
                let words = expand::expand_fields(&text, self.o.file.escape, &|n| Self::lookup(run, n))?;
                for p in cfg::parse_ports(&words)? {
                    cfg::add_to_set(&mut run.state.config, "ExposedPorts", &p);
                }
            }
            Keyword::User => {
                let u = self.expand_word(run, &self.shell_text(ins)?)?;
                cfg::set_str(&mut run.state.config, "User", &u);
            }
            Keyword::Workdir => {
                let w = self.expand_word(run, &self.shell_text(ins)?)?;
                let joined = cfg::join_workdir(&cfg::workdir(&run.state.config), &w);
                cfg::set_str(&mut run.state.config, "WorkingDir", &joined);
            }
            Keyword::Volume => {
                for v in self.expand_words(run, ins)? {
                    if v.is_empty() {
                        bail!("VOLUME: an empty path");
                    }
                    cfg::add_to_set(&mut run.state.config, "Volumes", &v);
                }
            }
            Keyword::Stopsignal => {
                let s = self.expand_word(run, &self.shell_text(ins)?)?;
                crate::container::signal::parse_signal(&s)?;
                cfg::set_str(&mut run.state.config, "StopSignal", &s);
            }
            Keyword::Cmd => {
                let v = self.command(run, &ins.args);
                cfg::set_list(&mut run.state.config, "Cmd", v);
                run.cmd_set = true;
            }
            Keyword::Entrypoint => {
                let v = self.command(run, &ins.args);
                cfg::set_list(&mut run.state.config, "Entrypoint", v);
                // An inherited CMD does not survive a new ENTRYPOINT.
                if !run.cmd_set {
                    cfg::remove(&mut run.state.config, "Cmd");
                }
            }
            Keyword::Shell => match &ins.args {
                Args::Exec(v) if !v.is_empty() => {
                    run.shell = v.clone();
                    cfg::set_list(&mut run.state.config, "Shell", v.clone());
                }
                _ => bail!("SHELL wants a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]"),
            },
            Keyword::Healthcheck => {
                let hc = self.healthcheck(run, ins)?;
                cfg::section(&mut run.state.config).insert("Healthcheck".into(), hc);
            }
            Keyword::Onbuild => {
                let text = self.shell_text(ins)?;
                parser::parse_instruction(&self.o.file.name, &text, ins.line, self.o.file.escape)?;
                let mut list: Vec<Value> = run.state.config["config"]
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.push(json!(text));
                cfg::section(&mut run.state.config).insert("OnBuild".into(), json!(list));
            }
            Keyword::Maintainer => {
                let text = self.shell_text(ins)?;
                run.state.config["author"] = json!(text);
            }
            Keyword::From | Keyword::Arg | Keyword::Run | Keyword::Copy | Keyword::Add => {
                unreachable!("handled elsewhere")
            }
        }
        Ok(nop(format!("{kw} {}", args_text(ins))))
    }

    /// CMD / ENTRYPOINT: the JSON form as is, the shell form through SHELL.
    fn command(&self, run: &Run, args: &Args) -> Vec<String> {
        match args {
            Args::Exec(v) => v.clone(),
            Args::Shell(t) => run.shell.iter().cloned().chain([t.clone()]).collect(),
        }
    }

    fn healthcheck(&self, run: &Run, ins: &Instruction) -> Result<Value> {
        let text = self.shell_text(ins)?;
        let t = text.trim();
        if t.eq_ignore_ascii_case("none") {
            return Ok(json!({"Test": ["NONE"]}));
        }
        let rest = match t.get(..3) {
            Some(k) if k.eq_ignore_ascii_case("cmd") => t[3..].trim(),
            _ => bail!("HEALTHCHECK wants NONE or CMD ..."),
        };
        let test: Vec<String> = match parser::command_args(rest) {
            Args::Exec(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            Args::Shell(s) => vec!["CMD-SHELL".into(), s],
        };
        let mut hc = json!({"Test": test});
        for (flag, field) in [
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start-period", "StartPeriod"),
            ("start-interval", "StartInterval"),
        ] {
            if let Some(v) = Self::flag(ins, flag) {
                let v = self.expand_word(run, v)?;
                let ns = cfg::parse_duration(&v).with_context(|| format!("HEALTHCHECK --{flag}"))?;
                if ns > 0 {
                    hc[field] = json!(ns);
                }
            }
        }
        if let Some(v) = Self::flag(ins, "retries") {
            let n: u32 = v
                .parse()
                .with_context(|| format!("HEALTHCHECK --retries {v:?}: not a number"))?;
            if n > 0 {
                hc["Retries"] = json!(n);
            }
        }
        Ok(hc)
    }

    /// What working containers start as: the state so far.
    fn base(run: &Run) -> Base {
        Base {
            id: run.base.id.clone(),
            name: run.base.name.clone(),
            layers: run.state.layers.clone(),
            config: run.state.config.clone(),
        }
    }

    fn container_options(&self, run: &Run) -> ContainerOptions {
        ContainerOptions {
            entrypoint: Some(String::new()),
            user: cfg::get_str(&run.state.config, "User").filter(|u| !u.is_empty()),
            workdir: Some(cfg::workdir(&run.state.config)),
            network: self.o.network.clone(),
            volume: self.o.volumes.clone(),
            cap_add: self.o.cap_add.clone(),
            cap_drop: self.o.cap_drop.clone(),
            log_driver: Some("none".into()),
            label: vec![
                format!("{}={}", working::BUILD_LABEL, std::process::id()),
                format!("{}={}", working::BOOT_LABEL, crate::container::boot_id()),
            ],
            ..Default::default()
        }
    }

    /// A fresh working container, carrying the upper directory when
    /// `--layers=false`.
    fn working(&self, run: &mut Run, opts: &ContainerOptions, args: &[String]) -> Result<Working<'a>> {
        let carried = run.carried.take();
        let w = Working::create(self.store, &Self::base(run), opts, args, carried.as_deref());
        if w.is_err()
            && let Some(c) = &carried
        {
            let _ = crate::layers::store::remove_tree(self.store, c);
        }
        w
    }

    /// After a filesystem step: a layer, or the upper directory carried on.
    fn finish_fs_step(&self, run: &mut Run, w: Working) -> Result<()> {
        if self.cacheable() {
            let layer = w.commit(run.state.layers.last().map(String::as_str))?;
            cfg::add_diff_id(&mut run.state.config, &layer.diff_id);
            run.state.layers.push(layer.chain_id);
            drop(w);
            return Ok(());
        }
        let mut r = [0u8; 8];
        crate::sys::random_bytes(&mut r);
        let path = self.store.tmp_dir().join(format!(
            "{}{}-{}-upper",
            crate::store::record::TMP_PREFIX,
            crate::store::owner_pid(),
            hex(&r)
        ));
        w.take_upper(&path)?;
        run.carried = Some(path);
        Ok(())
    }

    fn run(&mut self, run: &mut Run, ins: &Instruction) -> Result<String> {
        let args: Vec<String> = match &ins.args {
            Args::Exec(v) => v.clone(),
            Args::Shell(t) => {
                let script = if ins.heredocs.len() == 1 && t.trim().starts_with("<<") && !t.trim().contains(' ') {
                    // `RUN <<EOF`: the document is the script.
                    ins.heredocs[0].content.clone()
                } else if ins.heredocs.is_empty() {
                    t.clone()
                } else {
                    // `RUN cmd <<EOF`: the shell reads the documents itself.
                    let mut s = t.clone();
                    for h in &ins.heredocs {
                        s.push('\n');
                        s.push_str(&h.content);
                        if !h.content.ends_with('\n') {
                            s.push('\n');
                        }
                        s.push_str(&h.name);
                    }
                    s
                };
                run.shell.iter().cloned().chain([script]).collect()
            }
        };
        let mut opts = self.container_options(run);
        for (k, v) in &run.args {
            if let Some(v) = v
                && cfg::env_value(&run.state.config, k).is_none()
            {
                opts.env.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.o.build_args.get(*p) {
                opts.env.push(format!("{p}={v}"));
                self.used.insert(p.to_string());
            }
        }
        if let Some(n) = Self::flag(ins, "network") {
            opts.network = match n {
                "default" => self.o.network.clone(),
                "none" | "host" => Some(n.to_string()),
                other => bail!("RUN --network={other}: use default, none or host"),
            };
        }
        let mut mount_points = Vec::new();
        let mut temps = Vec::new();
        let code = (|| -> Result<(i32, Working<'a>)> {
            for f in ins.flags.iter().filter(|f| f.name == "mount") {
                let spec = f.value.as_deref().unwrap_or("");
                let spec = self.expand_word(run, spec)?;
                let (m, target) = self.run_mount(run, &spec, &mut temps)?;
                opts.mount.push(m);
                mount_points.push(target);
            }
            let mut w = self.working(run, &opts, &args)?;
            let code = w.run(&mount_points, self.o.quiet)?;
            Ok((code, w))
        })();
        for t in temps {
            let _ = crate::layers::store::remove_tree(self.store, &t);
        }
        let (code, w) = code?;
        if code != 0 {
            return Err(Coded::new(
                code.clamp(1, 255) as u8,
                format!("while running runtime: exit status {code}"),
            )
            .into());
        }
        self.finish_fs_step(run, w)?;
        let shown = args_text(ins);
        let with_args = Self::args_in_effect(run);
        let prefix = if with_args.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", with_args.len(), with_args.join(" "))
        };
        // buildah writes `/bin/sh -c` whatever SHELL says.
        Ok(format!("{prefix}/bin/sh -c {shown}"))
    }

    /// `RUN --mount=...`: a `--mount` option for the working container, and
    /// the target (whose stub is removed afterwards).
    fn run_mount(&self, run: &Run, spec: &str, temps: &mut Vec<PathBuf>) -> Result<(String, String)> {
        let mut kv: BTreeMap<String, String> = BTreeMap::new();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            kv.insert(k.to_ascii_lowercase(), v.to_string());
        }
        let kind = kv.get("type").map(String::as_str).unwrap_or("bind").to_string();
        let target = kv
            .get("target")
            .or_else(|| kv.get("dst"))
            .or_else(|| kv.get("destination"))
            .cloned();
        // Read-only unless rw (or readwrite) is given and not false.
        let ro = |kv: &BTreeMap<String, String>| {
            kv.get("rw")
                .or_else(|| kv.get("readwrite"))
                .is_none_or(|v| v == "false")
        };
        let abs = |t: &str| cfg::join_workdir(&cfg::workdir(&run.state.config), t);
        match kind.as_str() {
            "bind" => {
                let target = abs(&target.context("RUN --mount=type=bind needs target=")?);
                if !ro(&kv) {
                    bail!("RUN --mount=type=bind,rw is not supported: the writes would reach the source");
                }
                let src_rel = kv.get("source").or_else(|| kv.get("src")).cloned().unwrap_or_default();
                let root = match kv.get("from") {
                    Some(from) => self.mount_root(from, temps)?,
                    None => self.o.context.clone(),
                };
                let root = root
                    .canonicalize()
                    .with_context(|| format!("open {}", root.display()))?;
                let src = root.join(src_rel.trim_start_matches('/'));
                let src = src
                    .canonicalize()
                    .with_context(|| format!("RUN --mount source {src_rel:?}"))?;
                if !src.starts_with(&root) {
                    bail!("RUN --mount source {src_rel:?} is outside the build context");
                }
                Ok((
                    format!("type=bind,source={},destination={target},ro", src.display()),
                    target,
                ))
            }
            "cache" => {
                let target = abs(&target.context("RUN --mount=type=cache needs target=")?);
                let id = kv.get("id").cloned().unwrap_or_else(|| target.clone());
                let dir = cache::dir(self.store)
                    .join("mounts")
                    .join(&hex(&Sha256::digest(id.as_bytes()))[..24]);
                std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
                let mut m = format!("type=bind,source={},destination={target}", dir.display());
                if kv
                    .get("ro")
                    .or_else(|| kv.get("readonly"))
                    .is_some_and(|v| v != "false")
                {
                    m.push_str(",ro");
                }
                Ok((m, target))
            }
            "tmpfs" => {
                let target = abs(&target.context("RUN --mount=type=tmpfs needs target=")?);
                let mut m = format!("type=tmpfs,destination={target}");
                if let Some(s) = kv.get("size") {
                    m.push_str(&format!(",tmpfs-size={s}"));
                }
                Ok((m, target))
            }
            "secret" => {
                let id = kv.get("id").cloned().context("RUN --mount=type=secret needs id=")?;
                let target = abs(&target.unwrap_or_else(|| format!("/run/secrets/{id}")));
                let src = self
                    .o
                    .secrets
                    .get(&id)
                    .with_context(|| format!("the secret {id:?} was not given (--secret id={id},src=FILE)"))?;
                Ok((
                    format!("type=bind,source={},destination={target},ro", src.display()),
                    target,
                ))
            }
            other => bail!("RUN --mount=type={other} is not supported (bind, cache, tmpfs, secret)"),
        }
    }

    /// The content hash of what `RUN --mount=type=bind` (without `from`)
    /// shows of the context: the step reads it, so it is part of the key.
    fn bind_sources_hash(&self, run: &Run, ins: &Instruction) -> Result<String> {
        let mut hashes = Vec::new();
        for f in ins.flags.iter().filter(|f| f.name == "mount") {
            let spec = self.expand_word(run, f.value.as_deref().unwrap_or(""))?;
            let kv: BTreeMap<&str, &str> = spec.split(',').filter_map(|p| p.split_once('=')).collect();
            if kv.get("type").is_some_and(|t| *t != "bind") || kv.contains_key("from") {
                continue;
            }
            let source = kv.get("source").or_else(|| kv.get("src")).copied().unwrap_or(".");
            let req = CopyRequest {
                sources: vec![source.to_string()],
                dest: "/".into(),
                workdir: "/".into(),
                ..Default::default()
            };
            let src = Source {
                root: &self.o.context,
                ignore: Some(self.ignore),
            };
            hashes.push(copy::hash_sources(&src, &req)?);
        }
        Ok(hashes.join(","))
    }

    /// A directory with the files of a stage or image: its layer when it has
    /// one, else a merged copy in the store's temp space (added to `temps`).
    fn mount_root(&self, from: &str, temps: &mut Vec<PathBuf>) -> Result<PathBuf> {
        let layers = self.source_layers(from)?;
        match layers.as_slice() {
            [] => bail!("--from={from}: the image has no files"),
            [one] => Ok(one.clone()),
            _ => {
                let dir = self.tmp_dir("from")?;
                temps.push(dir.clone());
                let dest = dir.join("rootfs");
                let opts = crate::layers::unpack::UnpackOptions {
                    rootless: self.store.rootless,
                };
                let d = dest.clone();
                self.store.in_context(move || {
                    std::fs::create_dir(&d).with_context(|| format!("create {}", d.display()))?;
                    crate::layers::merge::merge_layers(&layers, &d, &opts)
                })?;
                Ok(dest)
            }
        }
    }

    /// The layer directories (bottom first) of a stage or image named by `--from`.
    fn source_layers(&self, from: &str) -> Result<Vec<PathBuf>> {
        let current = self.stages.len();
        let chain = match find_stage(self.stages, current, from) {
            Some(j) => self
                .results
                .get(&j)
                .with_context(|| format!("--from={from}: that stage is not built before this one"))?
                .layers
                .clone(),
            None => self.image(from)?.0.layers,
        };
        chain
            .iter()
            .map(|l| crate::layers::store::diff_dir(self.store, l))
            .collect()
    }
}

/// What a path is in the top-most of `layers` (bottom first) that has it.
fn lookup_in_layers(layers: &[PathBuf], path: &str) -> Option<std::fs::Metadata> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return None;
    }
    layers
        .iter()
        .rev()
        .find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
}

/// A COPY or ADD with its sources located and hashed.
struct PreparedCopy {
    req: CopyRequest,
    kind: SourceKind,
    /// `--chown` as written (resolved against the image's /etc/passwd later).
    chown: Option<String>,
    hash: String,
    /// `file:HASH`, `dir:HASH` or `multi:HASH` for the history.
    shown: String,
    /// A temp directory to remove afterwards.
    tmp: Option<PathBuf>,
}

enum SourceKind {
    Context,
    Dir(PathBuf),
    Layers(Vec<PathBuf>),
}

impl Builder<'_> {
    fn prepare_copy(&self, run: &Run, ins: &Instruction) -> Result<PreparedCopy> {
        for unsupported in ["parents", "exclude", "keep-git-dir"] {
            if Self::flag(ins, unsupported).is_some() {
                bail!("{} --{unsupported} is not supported yet", ins.keyword.name());
            }
        }
        let mut words = self.expand_words(run, ins)?;
        if words.len() < 2 {
            bail!("{} needs at least one source and a destination", ins.keyword.name());
        }
        let dest = words.pop().expect("two words");
        let chmod = Self::flag(ins, "chmod")
            .map(|m| self.expand_word(run, m).and_then(|m| copy::parse_chmod(&m)))
            .transpose()?;
        let chown = Self::flag(ins, "chown").map(|c| self.expand_word(run, c)).transpose()?;
        let is_add = ins.keyword == Keyword::Add;
        let checksum = Self::flag(ins, "checksum")
            .map(|c| self.expand_word(run, c))
            .transpose()?;
        if checksum.is_some() && !is_add {
            bail!("COPY has no --checksum (ADD has)");
        }
        let heredoc_names: Vec<&str> = ins.heredocs.iter().map(|h| h.name.as_str()).collect();
        let is_heredoc = |w: &str| w.starts_with("<<") && !ins.heredocs.is_empty();
        let is_url = |w: &str| is_add && (w.starts_with("http://") || w.starts_with("https://"));
        let n_here = words.iter().filter(|w| is_heredoc(w)).count();
        let n_url = words.iter().filter(|w| is_url(w)).count();
        let from = Self::flag(ins, "from").map(|f| self.expand_word(run, f)).transpose()?;
        let mut req = CopyRequest {
            sources: Vec::new(),
            dest,
            workdir: cfg::workdir(&run.state.config),
            chown: None,
            chmod,
            extract_archives: is_add,
        };
        let mixed = (n_here > 0 && n_here != words.len()) || (n_url > 0 && n_url != words.len());
        if mixed || (from.is_some() && (n_here > 0 || n_url > 0)) {
            bail!("mixing heredocs, URLs, --from and context files in one instruction is not supported");
        }
        if checksum.is_some() && n_url == 0 {
            bail!("ADD --checksum applies to URLs only");
        }
        if n_here > 0 {
            let dir = self.tmp_dir("heredoc")?;
            let mut h = Sha256::new();
            for (i, doc) in ins.heredocs.iter().enumerate() {
                // Unquoted delimiters expand variables (BuildKit); quotes stay.
                let content = if doc.expand {
                    self.expand_heredoc(run, &doc.content)?
                } else {
                    doc.content.clone()
                };
                let name = heredoc_names[i];
                std::fs::write(dir.join(name), &content).with_context(|| format!("write heredoc {name}"))?;
                h.update(name.as_bytes());
                h.update([0]);
                h.update(content.as_bytes());
                req.sources.push(name.to_string());
            }
            req.extract_archives = false;
            let hash = hex(&h.finalize());
            return Ok(PreparedCopy {
                req,
                kind: SourceKind::Dir(dir.clone()),
                chown,
                shown: format!("file:{hash}"),
                hash,
                tmp: Some(dir),
            });
        }
        if n_url > 0 {
            let dir = self.tmp_dir("download")?;
            let mut names = Vec::new();
            for url in &words {
                let path = copy::download(url, &dir, checksum.as_deref(), MAX_DOWNLOAD)?;
                names.push(path.file_name().unwrap_or_default().to_string_lossy().into_owned());
            }
            req.sources = names;
            // Downloads are files, never unpacked (Docker).
            req.extract_archives = false;
            let hash = copy::hash_sources(
                &Source {
                    root: &dir,
                    ignore: None,
                },
                &req,
            )?;
            return Ok(PreparedCopy {
                req,
                kind: SourceKind::Dir(dir.clone()),
                chown,
                shown: hash.clone(),
                hash: format!("{words:?}{hash}"),
                tmp: Some(dir),
            });
        }
        req.sources = words;
        if let Some(from) = from {
            let layers = self.source_layers(&from)?;
            let ident = layers
                .last()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "scratch".into());
            let hash = hex(&Sha256::digest(format!("{ident}\n{:?}", req.sources).as_bytes()));
            let shown = match req.sources.as_slice() {
                [one] => match lookup_in_layers(&layers, one) {
                    Some(md) if md.is_file() => format!("file:{hash}"),
                    Some(md) if md.is_dir() => format!("dir:{hash}"),
                    _ => format!("multi:{hash}"),
                },
                _ => format!("multi:{hash}"),
            };
            return Ok(PreparedCopy {
                req,
                kind: SourceKind::Layers(layers),
                chown,
                shown,
                hash: format!("from:{from}:{hash}"),
                tmp: None,
            });
        }
        let src = Source {
            root: &self.o.context,
            ignore: Some(self.ignore),
        };
        let hash = copy::hash_sources(&src, &req)?;
        let shown = self.shown_sources(&req, &hash);
        Ok(PreparedCopy {
            req,
            kind: SourceKind::Context,
            chown,
            shown,
            hash,
            tmp: None,
        })
    }

    /// How the history names COPY sources: `file:` and the content's sha256
    /// for one file (as buildah and Docker write it), else `dir:`/`multi:`.
    fn shown_sources(&self, req: &CopyRequest, hash: &str) -> String {
        if let [one] = req.sources.as_slice()
            && !one.contains(['*', '?', '['])
        {
            let p = self.o.context.join(one.trim_start_matches('/'));
            if let Ok(md) = std::fs::symlink_metadata(&p) {
                if md.is_file()
                    && let Ok(data) = std::fs::read(&p)
                {
                    return format!("file:{}", hex(&Sha256::digest(&data)));
                }
                if md.is_dir() {
                    return format!("dir:{hash}");
                }
            }
        }
        format!("multi:{hash}")
    }

    fn tmp_dir(&self, what: &str) -> Result<PathBuf> {
        let mut r = [0u8; 8];
        crate::sys::random_bytes(&mut r);
        let d = self.store.tmp_dir().join(format!(
            "{}{}-{}-{what}",
            crate::store::record::TMP_PREFIX,
            crate::store::owner_pid(),
            hex(&r)
        ));
        std::fs::create_dir(&d).with_context(|| format!("create {}", d.display()))?;
        Ok(d)
    }

    fn copy(&mut self, run: &mut Run, ins: &Instruction, p: PreparedCopy) -> Result<String> {
        let result = self.copy_inner(run, &p);
        if let Some(t) = &p.tmp {
            let _ = crate::layers::store::remove_all(t);
        }
        result?;
        Ok(format!(
            "/bin/sh -c #(nop) {} {} in {} ",
            ins.keyword.name(),
            p.shown,
            p.req.dest
        ))
    }

    fn copy_inner(&mut self, run: &mut Run, p: &PreparedCopy) -> Result<()> {
        let opts = self.container_options(run);
        let w = self.working(run, &opts, &["/bin/sh".to_string()])?;
        let sources: Vec<Vec<PathBuf>> = match &p.kind {
            SourceKind::Layers(l) => vec![l.clone()],
            _ => Vec::new(),
        };
        let context = self.o.context.clone();
        let ignore = self.ignore;
        w.with_rootfs(&sources, |rootfs: &Path, roots: &[PathBuf]| {
            let mut req = CopyRequest {
                sources: p.req.sources.clone(),
                dest: p.req.dest.clone(),
                workdir: p.req.workdir.clone(),
                chown: None,
                chmod: p.req.chmod,
                extract_archives: p.req.extract_archives,
            };
            if let Some(spec) = &p.chown {
                req.chown = Some(copy::resolve_chown(rootfs, spec)?);
            }
            let src = match &p.kind {
                SourceKind::Context => Source {
                    root: &context,
                    ignore: Some(ignore),
                },
                SourceKind::Dir(d) => Source { root: d, ignore: None },
                SourceKind::Layers(_) => Source {
                    root: &roots[0],
                    ignore: None,
                },
            };
            copy::copy(&src, rootfs, &req)
        })?;
        self.finish_fs_step(run, w)
    }

    /// Labels from `--label`, then the image is written. Its `created` is the
    /// last step's, so an unchanged rebuild gives the same ID.
    pub fn commit_image(&mut self, mut state: State) -> Result<String> {
        // Each --label is a LABEL step of its own, as podman adds them; its
        // time is the last step's so that an unchanged rebuild keeps its ID.
        let last_created = state.config["history"]
            .as_array()
            .and_then(|h| h.last())
            .and_then(|h| h["created"].as_str())
            .map(String::from)
            .unwrap_or_else(|| time::rfc3339_nanos(time::now_nanos()));
        for (k, v) in &self.o.labels {
            cfg::set_label(&mut state.config, k, v);
            let q = |x: &str| serde_json::to_string(x).unwrap_or_default();
            let created_by = format!("/bin/sh -c #(nop) LABEL {}={}", q(k), q(v));
            cfg::add_history(&mut state.config, &last_created, &created_by, true);
        }
        if self.o.squash_all && state.layers.len() > 1 {
            let layer = self.flatten(&state)?;
            state.layers = vec![layer.chain_id.clone()];
            state.config["rootfs"]["diff_ids"] = json!([layer.diff_id]);
            cfg::squash_history(&mut state.config, 0);
        }
        let created = state.config["history"]
            .as_array()
            .and_then(|h| h.last())
            .and_then(|h| h["created"].as_str())
            .map(String::from)
            .unwrap_or_else(|| time::rfc3339_nanos(time::now_nanos()));
        state.config["created"] = json!(created);
        if self.o.docker_format {
            // Docker-format configs carry the v1 `container_config` (buildah and
            // Docker write it); it also keeps the two formats' image IDs apart.
            state.config["container_config"] = state.config["config"].clone();
        }
        let unused: Vec<&String> = self
            .o
            .build_args
            .keys()
            .filter(|k| !self.used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            crate::output::warn(&format!(
                "one or more build args were not consumed: [{}]",
                unused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            ));
        }
        let rec = image::create::store_image_with(
            self.store,
            &state.layers,
            &state.config,
            self.o.docker_format,
            &self.o.annotations,
        )?;
        Ok(rec.id)
    }

    /// One layer holding the whole filesystem of `state` (`--squash-all`).
    fn flatten(&self, state: &State) -> Result<crate::layers::store::LayerRecord> {
        let layers: Vec<PathBuf> = state
            .layers
            .iter()
            .map(|l| crate::layers::store::diff_dir(self.store, l))
            .collect::<Result<_>>()?;
        let store = self.store.clone();
        let mapping = self.store.rootless.then(|| self.store.id_mapping().clone());
        let mnt = self.tmp_dir("squash")?;
        let m = mnt.clone();
        let ingested = crate::namespaces::userns::run_in_child(mapping.as_ref(), libc::CLONE_NEWNS, move || {
            crate::sys::mount::make_private().context("make the mount namespace private")?;
            crate::layers::overlay::mount(&layers, None, &m, store.rootless)?;
            let mut packed = crate::image::blobs::BlobWriter::new(&store)?;
            crate::layers::archive::pack_dir(&m, &mut packed)?;
            let tmp = packed.keep()?;
            let f = std::fs::File::open(&tmp).with_context(|| format!("open {}", tmp.display()))?;
            let r = crate::layers::ingest::ingest(
                &store,
                std::io::BufReader::new(f),
                &crate::layers::ingest::Expect::default(),
            );
            let _ = std::fs::remove_file(&tmp);
            r
        });
        let _ = std::fs::remove_dir(&mnt);
        crate::layers::ingest::commit(self.store, ingested?, None)
    }
}

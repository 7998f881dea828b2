//! Tests for the man pages in `man/`: they are generated from the clap
//! definition in `src/cli.rs` and must match it.
//!
//! One page per command, named the way podman names its pages: `casco.1`,
//! `casco-<verb>.1` for top-level verbs, and `casco-<group>.1` plus
//! `casco-<group>-<verb>.1` for `container`, `image` and `system`. Hidden
//! commands and clap's `help` subcommand get no page; aliases are mentioned in
//! the page of the command they name.
//!
//! Regenerate after changing the CLI (this also removes pages of commands that
//! no longer exist):
//!
//! ```text
//! CASCO_UPDATE_MAN=1 cargo test --release --test it man::
//! ```
//!
//! These tests need neither root nor the test user.

// Update mode says which files it wrote; the test runner captures stderr.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use casco::cli::Cli;
use clap::{Arg, Command, CommandFactory};

/// The command that rewrites `man/`, quoted in every failure message and page.
macro_rules! regenerate_command {
    () => {
        "CASCO_UPDATE_MAN=1 cargo test --release --test it man::"
    };
}
const REGENERATE: &str = regenerate_command!();

/// First lines of every page: roff comments, seen by whoever opens the file.
const HEADER: &str = concat!(
    ".\\\" Generated from src/cli.rs by tests/it/man.rs; do not edit.\n",
    ".\\\" Regenerate: ",
    regenerate_command!(),
    "\n"
);

/// Section of every page (user commands).
const SECTION: &str = "1";

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// True when the caller asked for the pages to be rewritten.
fn update_requested() -> bool {
    std::env::var_os("CASCO_UPDATE_MAN").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The CLI as the pages describe it: `casco::cli::Cli`, built (so every
/// subcommand knows its full name, `casco container run`, and its page name,
/// `casco-container-run`), without clap's `help` subcommands, and with visible
/// aliases written into the help texts, where clap_mangen would not show them.
fn documented_cli() -> Command {
    let mut cmd = document(Cli::command(), "");
    cmd.build();
    cmd
}

/// Prepares `cmd` and its subcommands for [`documented_cli`]; `parent` is the
/// full name of the command above it ("" for the root).
fn document(cmd: Command, parent: &str) -> Command {
    let full_name = if parent.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{parent} {}", cmd.get_name())
    };
    let aliases: Vec<String> = cmd.get_visible_aliases().map(|a| format!("{parent} {a}")).collect();
    let mut cmd = cmd
        .disable_help_subcommand(true)
        .mut_args(document_flag_aliases)
        .mut_subcommands(|sub| document(sub, &full_name));
    if !aliases.is_empty() {
        let about = cmd
            .get_long_about()
            .or_else(|| cmd.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        cmd = cmd.long_about(format!("{about}\n\nAlso available as: {}.", aliases.join(", ")));
    }
    cmd
}

/// Appends `[aliases: --net]` to the help of a flag with visible aliases, the
/// way `--help` shows them.
fn document_flag_aliases(arg: Arg) -> Arg {
    let aliases: Vec<String> = arg
        .get_visible_aliases()
        .unwrap_or_default()
        .iter()
        .map(|a| format!("--{a}"))
        .collect();
    if aliases.is_empty() {
        return arg;
    }
    let note = format!("[aliases: {}]", aliases.join(", "));
    let help = arg
        .get_help()
        .map(|h| format!("{h} {note}"))
        .unwrap_or_else(|| note.clone());
    let long_help = arg.get_long_help().map(|h| format!("{h} {note}"));
    let arg = arg.help(help);
    match long_help {
        Some(long_help) => arg.long_help(long_help),
        None => arg,
    }
}

/// `cmd` and every command below it that gets a page, parents first.
fn documented_commands(cmd: &Command) -> Vec<&Command> {
    let mut out = vec![cmd];
    for sub in visible_subcommands(cmd) {
        out.extend(documented_commands(sub));
    }
    out
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// `casco-container-run`: the page's name (set by clap when the root is built).
fn page_stem(cmd: &Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

fn page_file(cmd: &Command) -> String {
    format!("{}.{SECTION}", page_stem(cmd))
}

/// Renders one page. The NAME section reads `casco-run - Run a command ...`
/// (podman's form, and the name `man` and `whatis` look the page up by); the
/// SYNOPSIS is clap's usage line, `casco run [OPTIONS] <IMAGE> [COMMAND]...`,
/// rather than clap_mangen's list of every flag: OPTIONS lists them anyway.
fn render_page(cmd: &Command) -> Vec<u8> {
    let mut cmd = cmd.clone();
    let usage = cmd.render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
    // The date is left empty, so the pages do not change with the day they are
    // made; it is written as `""` because an empty .TH argument would vanish
    // and shift the source ("casco 0.1.0") into the date's place.
    let man = clap_mangen::Man::new(cmd.override_usage(usage))
        .section(SECTION)
        .date("\"\"")
        .source(concat!("casco ", env!("CARGO_PKG_VERSION")));
    let mut page = HEADER.as_bytes().to_vec();
    man.render(&mut page).expect("rendering into a Vec cannot fail");
    page
}

/// Every page, by file name.
fn render_pages(cli: &Command) -> BTreeMap<String, Vec<u8>> {
    documented_commands(cli)
        .into_iter()
        .map(|c| (page_file(c), render_page(c)))
        .collect()
}

/// The `*.1` files in `dir`, by file name; none when `dir` does not exist.
fn read_pages(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => panic!("read {}: {e}", dir.display()),
    };
    let mut pages = BTreeMap::new();
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(&format!(".{SECTION}")) {
            let path = entry.path();
            let text = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            pages.insert(name, text);
        }
    }
    pages
}

/// How the files on disk differ from the expected pages.
#[derive(Debug, Default, PartialEq)]
struct Drift {
    stale: Vec<String>,
    missing: Vec<String>,
    extra: Vec<String>,
}

impl Drift {
    fn between(expected: &BTreeMap<String, Vec<u8>>, on_disk: &BTreeMap<String, Vec<u8>>) -> Drift {
        let mut drift = Drift::default();
        for (name, page) in expected {
            match on_disk.get(name) {
                None => drift.missing.push(name.clone()),
                Some(old) if old != page => drift.stale.push(name.clone()),
                Some(_) => {}
            }
        }
        drift.extra = on_disk.keys().filter(|n| !expected.contains_key(*n)).cloned().collect();
        drift
    }

    fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Writes the missing and stale pages into `dir` and removes the extra ones.
fn update_pages(dir: &Path, expected: &BTreeMap<String, Vec<u8>>, drift: &Drift) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    for name in drift.missing.iter().chain(&drift.stale) {
        let path = dir.join(name);
        fs::write(&path, &expected[name]).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
    for name in &drift.extra {
        let path = dir.join(name);
        fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
        eprintln!("removed {}", path.display());
    }
}

/// Roff source as the text a reader sees, near enough to search: dashes and
/// apostrophes unescaped, font changes dropped.
fn plain_text(roff: &str) -> String {
    ["\\fB", "\\fI", "\\fR", "\\fP"]
        .iter()
        .fold(roff.to_owned(), |text, font| text.replace(font, ""))
        .replace("\\-", "-")
        .replace("\\*(Aq", "'")
        .replace("\\\\", "\\")
}

/// Whether `text` names the flag `--long` (not merely a longer flag that
/// starts or ends the same way).
fn mentions_flag(text: &str, long: &str) -> bool {
    let flag = format!("--{long}");
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(&flag).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + flag.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

#[test]
fn man_pages_are_current() {
    let expected = render_pages(&documented_cli());
    let dir = man_dir();
    let drift = Drift::between(&expected, &read_pages(&dir));
    if update_requested() {
        update_pages(&dir, &expected, &drift);
        return;
    }
    assert!(
        drift.is_empty(),
        "the man pages in {} do not match src/cli.rs\n  stale:   {:?}\n  missing: {:?}\n  extra:   {:?}\n\
         run `{REGENERATE}` to regenerate them",
        dir.display(),
        drift.stale,
        drift.missing,
        drift.extra,
    );
}

/// Checks the committed pages against `Cli::command()` directly, so a page that
/// lost a flag is caught however the page was made.
#[test]
fn every_subcommand_and_long_flag_is_in_its_page() {
    let cli = documented_cli();
    // While man_pages_are_current rewrites man/, check what it writes.
    let pages = if update_requested() {
        render_pages(&cli)
    } else {
        read_pages(&man_dir())
    };
    let mut problems = Vec::new();
    for cmd in documented_commands(&cli) {
        let file = page_file(cmd);
        let Some(roff) = pages.get(&file) else {
            problems.push(format!("{file}: no such page"));
            continue;
        };
        let text = plain_text(&String::from_utf8_lossy(roff));
        if !text.contains(&format!("{} -", page_stem(cmd))) {
            problems.push(format!("{file}: NAME does not name {}", page_stem(cmd)));
        }
        let full_name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
        if !text.contains(full_name) {
            problems.push(format!("{file}: SYNOPSIS does not show `{full_name}`"));
        }
        for sub in visible_subcommands(cmd) {
            let reference = format!("{}({SECTION})", page_stem(sub));
            if !text.contains(&reference) {
                problems.push(format!(
                    "{file}: subcommand {} is not listed as {reference}",
                    sub.get_name()
                ));
            }
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            for long in arg.get_long_and_visible_aliases().unwrap_or_default() {
                if !mentions_flag(&text, long) {
                    problems.push(format!("{file}: --{long} is missing"));
                }
            }
        }
        let parent = full_name.rsplit_once(' ').map_or("", |(p, _)| p);
        for alias in cmd.get_visible_aliases() {
            if !text.contains(&format!("{parent} {alias}")) {
                problems.push(format!("{file}: alias `{parent} {alias}` is not mentioned"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nrun `{REGENERATE}` to regenerate the pages",
        problems.join("\n")
    );
}

/// The page names follow podman's scheme, grouped verbs included; `help` has no page.
#[test]
fn pages_are_named_like_podmans() {
    let pages = render_pages(&documented_cli());
    for name in [
        "casco.1",
        "casco-run.1",
        "casco-ps.1",
        "casco-container.1",
        "casco-container-run.1",
        "casco-container-prune.1",
        "casco-image-ls.1",
        "casco-system-df.1",
    ] {
        assert!(pages.contains_key(name), "no page {name}; pages: {:?}", pages.keys());
    }
    let helps: Vec<&String> = pages.keys().filter(|n| n.contains("help")).collect();
    assert!(helps.is_empty(), "pages for clap's help subcommand: {helps:?}");
    let run = String::from_utf8_lossy(&pages["casco-container-run.1"]).into_owned();
    assert!(
        run.starts_with(HEADER),
        "casco-container-run.1 lacks the do-not-edit header"
    );
    assert!(
        plain_text(&run).contains("casco container run [OPTIONS] <IMAGE> [COMMAND]..."),
        "casco-container-run.1 synopsis does not start with the full command:\n{run}"
    );
}

#[test]
fn drift_lists_stale_missing_and_extra_pages() {
    let page = |s: &str| s.as_bytes().to_vec();
    let expected = BTreeMap::from([("a.1".to_owned(), page("A")), ("b.1".to_owned(), page("B"))]);
    let on_disk = BTreeMap::from([("a.1".to_owned(), page("old A")), ("gone.1".to_owned(), page("G"))]);
    let drift = Drift::between(&expected, &on_disk);
    assert_eq!(
        drift,
        Drift {
            stale: vec!["a.1".to_owned()],
            missing: vec!["b.1".to_owned()],
            extra: vec!["gone.1".to_owned()]
        }
    );
    assert!(Drift::between(&expected, &expected).is_empty());
}

#[test]
fn update_writes_missing_and_stale_pages_and_removes_extra_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let man = dir.path().join("man");
    fs::create_dir(&man).expect("mkdir man");
    fs::write(man.join("a.1"), "old A").expect("write a.1");
    fs::write(man.join("gone.1"), "G").expect("write gone.1");
    fs::write(man.join("README"), "kept").expect("write README");
    let expected = BTreeMap::from([("a.1".to_owned(), b"A".to_vec()), ("b.1".to_owned(), b"B".to_vec())]);

    let drift = Drift::between(&expected, &read_pages(&man));
    update_pages(&man, &expected, &drift);

    assert_eq!(read_pages(&man), expected);
    assert_eq!(fs::read_to_string(man.join("README")).expect("read README"), "kept");
}

#[test]
fn mentions_flag_needs_the_whole_flag() {
    let text = "-n, --names  Prefix each line\n--no-trunc\n--tail=N";
    assert!(mentions_flag(text, "names"));
    assert!(mentions_flag(text, "no-trunc"));
    assert!(mentions_flag(text, "tail"));
    assert!(!mentions_flag(text, "name"));
    assert!(!mentions_flag(text, "trunc"));
    assert!(!mentions_flag(text, "no"));
}

/// The definition the pages come from passes clap's own consistency checks
/// (these run only in debug builds: a release `casco` would silently shadow a
/// duplicated short flag, a debug one panics on it).
#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// `-h` is `--hostname` for `run` and `create`, as in podman; `--help` still
/// prints help there, and `-h` prints help everywhere else.
#[test]
fn short_h_is_hostname_for_run_and_create() {
    use casco::cli::{Command as Verb, ContainerCommand};
    use clap::Parser;
    use clap::error::ErrorKind;

    let parsed = Cli::try_parse_from(["casco", "run", "-h", "box", "img"]).expect("run -h NAME parses");
    let Verb::Run(run) = parsed.command else {
        panic!("parsed as {:?}", parsed.command)
    };
    assert_eq!(run.opts.hostname.as_deref(), Some("box"));
    let parsed =
        Cli::try_parse_from(["casco", "container", "create", "-h", "box", "img"]).expect("create -h NAME parses");
    let Verb::Container(ContainerCommand::Create(create)) = parsed.command else {
        panic!("parsed as {:?}", parsed.command)
    };
    assert_eq!(create.opts.hostname.as_deref(), Some("box"));

    for argv in [
        &["casco", "run", "--help"][..],
        &["casco", "create", "--help"],
        &["casco", "ps", "-h"],
    ] {
        let err = Cli::try_parse_from(argv).expect_err("help is not a parse");
        assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{argv:?}");
    }
}

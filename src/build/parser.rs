//! Containerfile / Dockerfile parsing: parser directives, comments, line
//! continuations, heredocs, instruction flags and the argument checks that
//! BuildKit makes before anything runs (moby/buildkit
//! `frontend/dockerfile/parser` and `instructions/parse.go`).
//!
//! Nothing is expanded here: arguments keep their quotes and `$VAR`s for
//! [`super::expand`], which runs with the build's variables in scope.
//!
//! Line handling, as in BuildKit:
//! - directives (`# escape=`, `# syntax=`, `# check=`) count only on the
//!   first lines of the file, before any blank line, other comment or
//!   instruction; each may appear once;
//! - a line whose first non-blank character is `#` is a comment, also in the
//!   middle of a continued instruction, where blank lines are skipped too;
//! - the escape character as the last non-blank character continues the
//!   instruction on the next line (`\\` at the end does not: it is an escaped
//!   escape); continuation lines keep their leading whitespace;
//! - heredoc bodies (RUN, COPY, ADD, and ONBUILD of those) follow the whole
//!   instruction and are taken verbatim.

use anyhow::{Result, anyhow};

use super::expand::raw_words;

/// An instruction name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Entrypoint,
    Env,
    Arg,
    Label,
    Expose,
    User,
    Workdir,
    Volume,
    Copy,
    Add,
    Stopsignal,
    Healthcheck,
    Shell,
    Onbuild,
    Maintainer,
}

impl Keyword {
    /// Every keyword, in the order of the enum.
    pub const ALL: [Keyword; 18] = [
        Keyword::From,
        Keyword::Run,
        Keyword::Cmd,
        Keyword::Entrypoint,
        Keyword::Env,
        Keyword::Arg,
        Keyword::Label,
        Keyword::Expose,
        Keyword::User,
        Keyword::Workdir,
        Keyword::Volume,
        Keyword::Copy,
        Keyword::Add,
        Keyword::Stopsignal,
        Keyword::Healthcheck,
        Keyword::Shell,
        Keyword::Onbuild,
        Keyword::Maintainer,
    ];

    /// The instruction name in upper case: "FROM", "RUN", ...
    pub fn name(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Arg => "ARG",
            Keyword::Label => "LABEL",
            Keyword::Expose => "EXPOSE",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Volume => "VOLUME",
            Keyword::Copy => "COPY",
            Keyword::Add => "ADD",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Maintainer => "MAINTAINER",
        }
    }

    /// The keyword for an instruction name, in any case.
    pub fn from_name(s: &str) -> Option<Keyword> {
        Keyword::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(s))
    }

    /// Instructions whose bodies may use heredocs.
    fn takes_heredocs(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }

    /// Instructions whose arguments may be a JSON array (BuildKit's
    /// parseMaybeJSON / parseMaybeJSONToList).
    fn takes_json(self) -> bool {
        matches!(
            self,
            Keyword::Run
                | Keyword::Cmd
                | Keyword::Entrypoint
                | Keyword::Shell
                | Keyword::Copy
                | Keyword::Add
                | Keyword::Volume
        )
    }

    /// The flags an instruction accepts.
    fn flags(self) -> &'static [(&'static str, FlagKind)] {
        use FlagKind::*;
        match self {
            Keyword::From => &[("platform", Value)],
            Keyword::Run => &[("mount", Repeated), ("network", Value), ("security", Value)],
            Keyword::Copy => &[
                ("from", Value),
                ("chown", Value),
                ("chmod", Value),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", Repeated),
            ],
            Keyword::Add => &[
                ("chown", Value),
                ("chmod", Value),
                ("link", Bool),
                ("checksum", Value),
                ("keep-git-dir", Bool),
                ("exclude", Repeated),
            ],
            Keyword::Healthcheck => &[
                ("interval", Value),
                ("timeout", Value),
                ("start-period", Value),
                ("start-interval", Value),
                ("retries", Value),
            ],
            _ => &[],
        }
    }
}

/// How a flag takes its value (BuildKit's BFlags types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    /// `--name=value`, once.
    Value,
    /// `--name=value`, any number of times.
    Repeated,
    /// `--name`, `--name=true` or `--name=false`, once.
    Bool,
}

/// A leading `--flag` of an instruction: `--from=x` → ("from", Some("x")); `--link` → ("link", None).
/// Quotes are removed and escapes applied (as BuildKit does before it reads
/// flags); the value is not expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

impl Flag {
    /// A boolean flag's value: `--link` and `--link=true` are true
    /// (case-insensitive), `--link=false` false.
    pub fn is_true(&self) -> bool {
        self.value.as_deref().is_none_or(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// An instruction's arguments after its flags.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    /// Shell form: the rest of the line after the flags, continuation lines joined (the escape char + newline
    /// removed, as BuildKit does), surrounding whitespace trimmed, NOT expanded, quotes kept.
    Shell(String),
    /// JSON exec form: `["a", "b"]` (only when the text is a valid JSON array of strings; otherwise Shell).
    Exec(Vec<String>),
}

/// A heredoc body attached to RUN, COPY or ADD (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    /// The delimiter, quotes removed (`<<"EOF"` → `EOF`).
    pub name: String,
    /// The body lines with their line ends, without the terminator line.
    pub content: String,
    /// False when the delimiter was quoted: the body is then not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from the body lines and the terminator.
    pub chomp_tabs: bool,
}

/// One instruction of a Containerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    pub keyword: Keyword,
    /// Leading --flags, in order, raw (unexpanded).
    pub flags: Vec<Flag>,
    pub args: Args,
    /// Only RUN, COPY, ADD (and ONBUILD of those); content already has `<<-` tab stripping applied.
    pub heredocs: Vec<Heredoc>,
    /// The instruction as written, continuation lines joined with the escape+newline removed, trimmed.
    pub original: String,
}

impl Instruction {
    /// The value of the last `--name` flag, if given (`Some(None)` for a
    /// flag without `=`).
    pub fn flag(&self, name: &str) -> Option<Option<&str>> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref())
    }

    /// Every value of a repeatable flag (`--mount`, `--exclude`), in order.
    pub fn flag_values(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|f| f.name == name)
            .filter_map(|f| f.value.as_deref())
            .collect()
    }
}

/// A parsed Containerfile.
#[derive(Debug, Clone)]
pub struct Containerfile {
    /// How errors name the file: the path as given, or "-" for stdin.
    pub name: String,
    /// '\\' or '`' from `# escape=`.
    pub escape: char,
    /// `# syntax=` (recorded, otherwise ignored).
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// Parses a whole Containerfile. `name` is how error messages name it.
pub fn parse(name: &str, text: &str) -> Result<Containerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let directives = read_directives(name, &lines)?;
    let mut reader = Reader {
        name,
        lines: &lines,
        next: directives.lines,
        escape: directives.escape,
        line_offset: 0,
    };
    let mut instructions = Vec::new();
    while let Some(instruction) = reader.next_instruction()? {
        instructions.push(instruction);
    }
    if instructions.is_empty() {
        return Err(anyhow!("{name}:{}: file with no instructions", lines.len().max(1)));
    }
    Ok(Containerfile {
        name: name.to_string(),
        escape: directives.escape,
        syntax: directives.syntax,
        instructions,
    })
}

/// Parses one instruction line (used for ONBUILD triggers); `line` for messages.
///
/// `text` may span several lines: continuations and, for RUN/COPY/ADD,
/// heredoc bodies (an image's ONBUILD trigger carries them that way). It
/// must hold exactly one instruction; `line` is the number of its first line.
pub fn parse_instruction(name: &str, text: &str, line: usize, escape: char) -> Result<Instruction> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut reader = Reader {
        name,
        lines: &lines,
        next: 0,
        escape,
        line_offset: line.saturating_sub(1),
    };
    let Some(instruction) = reader.next_instruction()? else {
        return Err(anyhow!("{name}:{line}: empty instruction"));
    };
    if let Some(extra) = reader.next_instruction()? {
        return Err(anyhow!(
            "{name}:{}: expected one instruction, found another: {}",
            extra.line,
            extra.original
        ));
    }
    Ok(instruction)
}

/// `["a","b"]` → Exec, else Shell (trimmed). Used for HEALTHCHECK CMD and ONBUILD payloads.
pub fn command_args(text: &str) -> Args {
    let text = text.trim();
    match json_array(text) {
        Some(Ok(v)) => Args::Exec(v),
        _ => Args::Shell(text.to_string()),
    }
}

/// `Some(Ok(strings))` for a JSON array of strings, `Some(Err(()))` for a
/// JSON array with other elements, `None` when `text` is no JSON array.
fn json_array(text: &str) -> Option<Result<Vec<String>, ()>> {
    if !text.starts_with('[') {
        return None;
    }
    let values: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    Some(
        values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(()),
            })
            .collect(),
    )
}

/// The directives at the top of a file and the index of the first line after
/// them.
struct Directives {
    escape: char,
    syntax: Option<String>,
    lines: usize,
}

fn read_directives(name: &str, lines: &[&str]) -> Result<Directives> {
    let mut out = Directives {
        escape: '\\',
        syntax: None,
        lines: 0,
    };
    let mut seen: Vec<String> = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let Some((key, value)) = directive(trim_newline(raw).trim_start()) else {
            break;
        };
        if seen.contains(&key) {
            return Err(anyhow!("{name}:{}: only one {key} parser directive can be used", i + 1));
        }
        match key.as_str() {
            "escape" => {
                out.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(anyhow!(
                            "{name}:{}: invalid escape token '{value}' does not match ` or \\",
                            i + 1
                        ));
                    }
                }
            }
            "syntax" => out.syntax = Some(value.to_string()),
            _ => {} // check: lint settings, not ours
        }
        seen.push(key);
        out.lines = i + 1;
    }
    Ok(out)
}

/// `# key = value` with a known key (case-insensitive): `(key lower-cased,
/// value trimmed)`. BuildKit's regexp: `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let key = rest[..key_len].to_ascii_lowercase();
    let value = rest[key_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() || !matches!(key.as_str(), "escape" | "syntax" | "check") {
        return None;
    }
    Some((key, value))
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// BuildKit's continuation regexp `([^E])E[ \t]*$|^E[ \t]*$`: the line with
/// the escape and trailing blanks removed, and whether the instruction
/// continues on the next line.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape)
        && !before.ends_with(escape)
    {
        return (before, true);
    }
    (line, false)
}

/// Walks lines and produces instructions.
struct Reader<'a> {
    name: &'a str,
    lines: &'a [&'a str],
    /// Index of the next unread line.
    next: usize,
    escape: char,
    /// Added to line indexes for messages (parse_instruction's `line`).
    line_offset: usize,
}

impl Reader<'_> {
    fn line_no(&self, index: usize) -> usize {
        index + 1 + self.line_offset
    }

    fn next_instruction(&mut self) -> Result<Option<Instruction>> {
        // Skip blank lines and comments to the start of an instruction.
        let first = loop {
            let Some(raw) = self.lines.get(self.next) else {
                return Ok(None);
            };
            self.next += 1;
            let line = trim_newline(raw).trim_start();
            if !line.is_empty() && !line.starts_with('#') {
                break line;
            }
        };
        let start = self.line_no(self.next - 1);
        let (text, mut continues) = trim_continuation(first, self.escape);
        let mut joined = text.to_string();
        while continues && self.next < self.lines.len() {
            let line = trim_newline(self.lines[self.next]);
            self.next += 1;
            if is_comment(line) || line.trim_start().is_empty() {
                continue;
            }
            let (text, more) = trim_continuation(line, self.escape);
            joined.push_str(text);
            continues = more;
        }
        let mut instruction = parse_line(&joined, self.escape).map_err(|e| anyhow!("{}:{start}: {e}", self.name))?;
        instruction.line = start;
        self.read_heredocs(&mut instruction, &joined, start)?;
        check_heredoc_args(&instruction).map_err(|e| anyhow!("{}:{start}: {e}", self.name))?;
        Ok(Some(instruction))
    }

    /// Reads the heredoc bodies that follow an instruction which names some.
    fn read_heredocs(&mut self, instruction: &mut Instruction, joined: &str, start: usize) -> Result<()> {
        let target = match (&instruction.keyword, &instruction.args) {
            (Keyword::Onbuild, Args::Shell(payload)) => parse_line(payload, self.escape).ok(),
            _ => None,
        };
        let (keyword, args) = match &target {
            Some(t) => (t.keyword, &t.args),
            None => (instruction.keyword, &instruction.args),
        };
        if !keyword.takes_heredocs() || matches!(args, Args::Exec(_)) || !joined.contains("<<") {
            return Ok(());
        }
        for (name, expand, chomp_tabs) in heredoc_markers(joined) {
            let mut content = String::new();
            let mut terminated = false;
            while let Some(raw) = self.lines.get(self.next) {
                self.next += 1;
                let mut candidate = trim_newline(raw);
                if chomp_tabs {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == name {
                    terminated = true;
                    break;
                }
                content.push_str(raw);
            }
            if !terminated {
                return Err(anyhow!(
                    "{}:{start}: unterminated heredoc {name:?}: no line {name:?} up to the end of the file",
                    self.name
                ));
            }
            if chomp_tabs {
                content = strip_leading_tabs(&content);
            }
            instruction.heredocs.push(Heredoc {
                name,
                content,
                expand,
                chomp_tabs,
            });
        }
        Ok(())
    }
}

fn strip_leading_tabs(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// The heredocs a line opens, in order: `(delimiter, expand, chomp_tabs)`.
///
/// As BuildKit does: the line is split into words (quotes and backslash
/// escapes kept, `<<` swallows the blanks after it), and a word that is
/// `[digits]<<[-]WORD` with no further `<` opens a heredoc. So `<<` inside
/// quotes or glued to a previous word (`cat<<EOF`) does not.
fn heredoc_markers(line: &str) -> Vec<(String, bool, bool)> {
    let Some(words) = heredoc_words(line) else {
        return Vec::new();
    };
    words.iter().filter_map(|w| heredoc_marker(w)).collect()
}

fn heredoc_marker(word: &str) -> Option<(String, bool, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote_delimiter(rest)?;
    if name.is_empty() {
        return None;
    }
    Some((name, !quoted, chomp))
}

/// The delimiter with quotes and backslash escapes removed, and whether it
/// had quotes. None if it does not make one word.
fn unquote_delimiter(s: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        q if q == c => break,
                        '\\' if c == '"' => {
                            let n = chars.next()?;
                            if !matches!(n, '"' | '$' | '\\') {
                                out.push('\\');
                            }
                            out.push(n);
                        }
                        x => out.push(x),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    Some((out, quoted))
}

/// Words for heredoc detection (BuildKit lexes with raw quotes and escapes):
/// None on an unterminated quote, where BuildKit finds no heredocs.
fn heredoc_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                word.push(c);
                loop {
                    let n = chars.next()?;
                    word.push(n);
                    if n == c {
                        break;
                    }
                    if n == '\\' && c == '"' {
                        word.push(chars.next()?);
                    }
                }
            }
            '\\' => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '<' if chars.peek() == Some(&'<') => {
                chars.next();
                word.push_str("<<");
                while chars.next_if(|c| matches!(c, ' ' | '\t' | '\r')).is_some() {}
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    Some(words)
}

/// COPY/ADD may not name a heredoc as the destination.
fn check_heredoc_args(instruction: &Instruction) -> Result<(), String> {
    if !matches!(instruction.keyword, Keyword::Copy | Keyword::Add) || instruction.heredocs.is_empty() {
        return Ok(());
    }
    if let Args::Shell(s) = &instruction.args
        && let Some(dest) = s.split_whitespace().last()
        && heredoc_marker(dest).is_some()
    {
        return Err(format!(
            "{} cannot accept a heredoc as a destination",
            instruction.keyword.name()
        ));
    }
    Ok(())
}

/// One joined instruction line → Instruction (no heredocs yet, line 0).
/// Errors are messages without the `name:line:` prefix.
fn parse_line(line: &str, escape: char) -> Result<Instruction, String> {
    let trimmed = line.trim();
    let split = trimmed.find(is_blank).unwrap_or(trimmed.len());
    let (word, rest) = (&trimmed[..split], &trimmed[split..]);
    let keyword = Keyword::from_name(word).ok_or_else(|| format!("unknown instruction: {word}"))?;
    let (flag_words, rest) = extract_flags(rest, escape);
    let flags = check_flags(keyword, &flag_words)?;
    let rest = rest.trim();
    let args = if keyword.takes_json() {
        match json_array(rest) {
            Some(Ok(v)) => Args::Exec(v),
            Some(Err(())) => {
                return Err("when using JSON array syntax, arrays must be comprised of strings only".to_string());
            }
            None => Args::Shell(rest.to_string()),
        }
    } else {
        Args::Shell(rest.to_string())
    };
    let instruction = Instruction {
        line: 0,
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        original: trimmed.to_string(),
    };
    check_args(&instruction, escape)?;
    Ok(instruction)
}

/// BuildKit's separator between the instruction name and its arguments.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\u{b}' | '\u{c}')
}

/// BuildKit's extractBuilderFlags: the leading `--words` (quotes removed,
/// escapes applied) and the rest of the line. A bare `--` ends the flags and
/// is dropped.
fn extract_flags(line: &str, escape: char) -> (Vec<String>, &str) {
    let mut words = Vec::new();
    let mut pos = 0;
    let bytes_len = line.len();
    loop {
        let Some(off) = line[pos..].find(|c: char| !c.is_whitespace()) else {
            return (words, "");
        };
        pos += off;
        if !line[pos..].starts_with("--") {
            return (words, &line[pos..]);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = line[pos..].char_indices().peekable();
        let mut end = bytes_len;
        while let Some((i, c)) = chars.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == escape => match chars.next() {
                    Some((_, n)) => word.push(n),
                    None => quote = None,
                },
                Some(_) => word.push(c),
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == escape => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                None => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            return (words, &line[pos..]);
        }
        words.push(word);
    }
}

/// Checks flag words against what the instruction accepts.
fn check_flags(keyword: Keyword, words: &[String]) -> Result<Vec<Flag>, String> {
    let allowed = keyword.flags();
    let mut flags: Vec<Flag> = Vec::new();
    for word in words {
        let spec = word.strip_prefix("--").unwrap_or(word);
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (spec, None),
        };
        let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
            return Err(if allowed.is_empty() {
                format!("unknown flag --{name}: {} takes no flags", keyword.name())
            } else {
                let names: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                format!(
                    "unknown flag --{name} for {} (it takes {})",
                    keyword.name(),
                    names.join(", ")
                )
            });
        };
        if kind != FlagKind::Repeated && flags.iter().any(|f| f.name == name) {
            return Err(format!("duplicate flag specified: --{name}"));
        }
        match (kind, value) {
            (FlagKind::Value | FlagKind::Repeated, None) | (FlagKind::Bool, Some("")) => {
                return Err(format!("missing a value on flag: --{name}"));
            }
            (FlagKind::Bool, Some(v)) if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
                return Err(format!("expecting boolean value for flag --{name}, not: {v}"));
            }
            _ => {}
        }
        flags.push(Flag {
            name: name.to_string(),
            value: value.map(str::to_string),
        });
    }
    Ok(flags)
}

fn at_least_one(keyword: Keyword) -> String {
    format!("{} requires at least one argument", keyword.name())
}

/// The per-instruction argument checks BuildKit makes at parse time.
fn check_args(ins: &Instruction, escape: char) -> Result<(), String> {
    let k = ins.keyword;
    let shell = match &ins.args {
        Args::Shell(s) => Some(s.as_str()),
        Args::Exec(_) => None,
    };
    match (k, &ins.args) {
        (Keyword::From, _) => check_from(shell.unwrap_or_default()),
        (Keyword::Cmd | Keyword::Entrypoint, Args::Exec(_)) => Ok(()),
        (Keyword::Run | Keyword::Volume, Args::Exec(v)) if v.is_empty() => Err(at_least_one(k)),
        (Keyword::Volume, Args::Exec(v)) if v.iter().any(|s| s.trim().is_empty()) => {
            Err("VOLUME specified can not be an empty string".to_string())
        }
        (Keyword::Shell, Args::Exec(v)) if v.is_empty() => Err(at_least_one(k)),
        (Keyword::Shell, Args::Shell(s)) if !s.is_empty() => Err(format!(
            "SHELL requires the arguments to be in JSON form (SHELL [\"executable\", \"parameters\"]), not: {s}"
        )),
        (Keyword::Copy | Keyword::Add, Args::Exec(v)) if v.len() < 2 => Err(no_destination(k)),
        (Keyword::Copy | Keyword::Add, Args::Shell(s)) if s.split_whitespace().count() < 2 => Err(no_destination(k)),
        (_, Args::Exec(_)) => Ok(()),
        (_, Args::Shell(s)) if s.is_empty() => Err(at_least_one(k)),
        (Keyword::Env | Keyword::Label, Args::Shell(s)) => check_pairs(k, s, escape),
        (Keyword::Arg, Args::Shell(s)) => {
            for word in raw_words(s, escape) {
                if word.starts_with('=') {
                    return Err("ARG names can not be blank".to_string());
                }
            }
            Ok(())
        }
        (Keyword::Healthcheck, Args::Shell(s)) => check_healthcheck(ins, s),
        (Keyword::Onbuild, Args::Shell(s)) => check_onbuild(s, escape),
        _ => Ok(()),
    }
}

fn no_destination(k: Keyword) -> String {
    format!(
        "{} requires at least two arguments, but only one was provided. Destination could not be determined",
        k.name()
    )
}

/// `FROM image` or `FROM image AS name`.
fn check_from(args: &str) -> Result<(), String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [_] => Ok(()),
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if valid {
                Ok(())
            } else {
                Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ))
            }
        }
        _ => Err("FROM requires either one or three arguments".to_string()),
    }
}

/// ENV and LABEL: `k=v ...`, or the legacy `KEY value` (one pair).
fn check_pairs(k: Keyword, s: &str, escape: char) -> Result<(), String> {
    let words = raw_words(s, escape);
    let Some(first) = words.first() else {
        return Err(at_least_one(k));
    };
    if !first.contains('=') {
        if words.len() < 2 {
            return Err(format!("{} must have two arguments", k.name()));
        }
        return Ok(());
    }
    for word in &words {
        match word.split_once('=') {
            None => {
                return Err(format!(
                    "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
                ));
            }
            Some(("", _)) => return Err(format!("{} names can not be blank", k.name())),
            Some(_) => {}
        }
    }
    Ok(())
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`.
fn check_healthcheck(ins: &Instruction, s: &str) -> Result<(), String> {
    let split = s.find(char::is_whitespace).unwrap_or(s.len());
    let (kind, rest) = (&s[..split], s[split..].trim());
    if kind.eq_ignore_ascii_case("NONE") {
        if !rest.is_empty() || !ins.flags.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".to_string());
        }
        return Ok(());
    }
    if !kind.eq_ignore_ascii_case("CMD") {
        return Err(format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)"));
    }
    match json_array(rest) {
        Some(Err(())) => {
            return Err("when using JSON array syntax, arrays must be comprised of strings only".to_string());
        }
        Some(Ok(v)) if v.is_empty() => return Err("Missing command after HEALTHCHECK CMD".to_string()),
        None if rest.is_empty() => return Err("Missing command after HEALTHCHECK CMD".to_string()),
        _ => {}
    }
    for flag in &ins.flags {
        let value = flag.value.as_deref().unwrap_or_default();
        if flag.name == "retries" {
            match value.parse::<i64>() {
                Ok(n) if n >= 0 => {}
                Ok(n) => return Err(format!("--retries cannot be negative ({n})")),
                Err(_) => return Err(format!("--retries: invalid number {value:?}")),
            }
        } else if value != "0"
            && let Err(e) = crate::util::time::parse_duration(value)
        {
            return Err(format!("--{}: {e}", flag.name));
        }
    }
    Ok(())
}

/// The ONBUILD payload must be a valid instruction other than ONBUILD, FROM
/// and MAINTAINER.
fn check_onbuild(payload: &str, escape: char) -> Result<(), String> {
    let word = payload.split(is_blank).next().unwrap_or_default();
    match Keyword::from_name(word) {
        Some(Keyword::Onbuild) => Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()),
        Some(k @ (Keyword::From | Keyword::Maintainer)) => {
            Err(format!("{} isn't allowed as an ONBUILD trigger", k.name()))
        }
        _ => parse_line(payload, escape).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Containerfile {
        match parse("Containerfile", text) {
            Ok(c) => c,
            Err(e) => panic!("parse failed: {e:#}\n{text}"),
        }
    }

    fn one(text: &str) -> Instruction {
        let c = p(text);
        assert_eq!(c.instructions.len(), 1, "{:?}", c.instructions);
        c.instructions.into_iter().next().unwrap()
    }

    fn err(text: &str) -> String {
        match parse("Containerfile", text) {
            Ok(c) => panic!("expected an error for {text:?}, got {:?}", c.instructions),
            Err(e) => format!("{e:#}"),
        }
    }

    fn shell(s: &str) -> Args {
        Args::Shell(s.to_string())
    }

    fn exec(v: &[&str]) -> Args {
        Args::Exec(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn realistic_multi_stage_file() {
        let text = r#"# syntax=docker/dockerfile:1.7
ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# dependencies first
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg \
    go mod download
COPY . .
RUN <<EOF
set -e
go build -o /out/app ./cmd/app
EOF

FROM alpine:3.19
LABEL org.opencontainers.image.title="app" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH
COPY --from=build --chmod=755 /out/app /srv/app/bin/app
COPY <<-"CONF" /etc/app.conf
	listen = :8080
	home = $APP_HOME
	CONF
EXPOSE 8080/tcp
USER 65534:65534
HEALTHCHECK --interval=30s --timeout=3s CMD ["/srv/app/bin/app", "health"]
ENTRYPOINT ["/srv/app/bin/app"]
CMD ["serve"]
"#;
        let c = p(text);
        assert_eq!(c.syntax.as_deref(), Some("docker/dockerfile:1.7"));
        let summary: Vec<(usize, &str)> = c.instructions.iter().map(|i| (i.line, i.keyword.name())).collect();
        assert_eq!(
            summary,
            [
                (2, "ARG"),
                (3, "FROM"),
                (4, "WORKDIR"),
                (6, "COPY"),
                (7, "RUN"),
                (10, "COPY"),
                (11, "RUN"),
                (16, "FROM"),
                (17, "LABEL"),
                (19, "ENV"),
                (20, "COPY"),
                (21, "COPY"),
                (25, "EXPOSE"),
                (26, "USER"),
                (27, "HEALTHCHECK"),
                (28, "ENTRYPOINT"),
                (29, "CMD"),
            ]
        );
        let ins = &c.instructions;
        assert_eq!(ins[1].flag("platform"), Some(Some("$BUILDPLATFORM")));
        assert_eq!(ins[1].args, shell("golang:${GO_VERSION} AS build"));
        assert_eq!(ins[4].flag_values("mount").len(), 2);
        assert_eq!(ins[4].args, shell("go mod download"));
        assert_eq!(ins[6].heredocs[0].content, "set -e\ngo build -o /out/app ./cmd/app\n");
        assert_eq!(
            ins[8].args,
            shell("org.opencontainers.image.title=\"app\"       org.opencontainers.image.licenses=\"Apache-2.0\"")
        );
        let conf = &ins[11].heredocs[0];
        assert_eq!(
            (conf.name.as_str(), conf.expand, conf.chomp_tabs),
            ("CONF", false, true)
        );
        assert_eq!(conf.content, "listen = :8080\nhome = $APP_HOME\n");
        assert_eq!(ins[14].args, shell("CMD [\"/srv/app/bin/app\", \"health\"]"));
        assert_eq!(ins[14].flag("timeout"), Some(Some("3s")));
        assert_eq!(
            command_args("[\"/srv/app/bin/app\", \"health\"]"),
            exec(&["/srv/app/bin/app", "health"])
        );
        assert_eq!(ins[16].args, exec(&["serve"]));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let c = p("from alpine\nRun echo hi\nworkDIR /app\n");
        let k: Vec<Keyword> = c.instructions.iter().map(|i| i.keyword).collect();
        assert_eq!(k, [Keyword::From, Keyword::Run, Keyword::Workdir]);
        assert_eq!(c.instructions[1].args, shell("echo hi"));
        for k in Keyword::ALL {
            assert_eq!(Keyword::from_name(&k.name().to_lowercase()), Some(k));
        }
        assert_eq!(Keyword::Stopsignal.name(), "STOPSIGNAL");
    }

    #[test]
    fn unknown_instruction() {
        assert_eq!(err("FROM a\n\nFOO bar\n"), "Containerfile:3: unknown instruction: FOO");
        let e = format!("{:#}", parse("-", "FROM a\nfrobnicate x").unwrap_err());
        assert_eq!(e, "-:2: unknown instruction: frobnicate");
    }

    #[test]
    fn line_numbers_and_original() {
        let c = p("# comment\n\nFROM a\nRUN echo a \\\n    b\n\nCMD x\n");
        let lines: Vec<usize> = c.instructions.iter().map(|i| i.line).collect();
        assert_eq!(lines, [3, 4, 7]);
        assert_eq!(c.instructions[1].original, "RUN echo a     b");
        assert_eq!(c.instructions[1].args, shell("echo a     b"));
    }

    #[test]
    fn comments_and_hash_in_arguments() {
        let c = p("FROM a\n  # indented comment\nRUN echo '#not a comment' # nor this\n");
        assert_eq!(c.instructions.len(), 2);
        assert_eq!(c.instructions[1].args, shell("echo '#not a comment' # nor this"));
    }

    #[test]
    fn continuation_skips_comments_and_blank_lines() {
        let i = one("RUN apt-get update && \\\n# a comment\n\n   \n    apt-get install -y x\n");
        assert_eq!(i.args, shell("apt-get update &&     apt-get install -y x"));
        assert_eq!(i.line, 1);
    }

    #[test]
    fn continuation_details() {
        // Trailing blanks after the escape still continue.
        assert_eq!(one("RUN a \\  \t\nb\n").args, shell("a b"));
        // An escaped escape at the end does not continue.
        let c = p("RUN echo a\\\\\nRUN b\n");
        assert_eq!(c.instructions.len(), 2);
        assert_eq!(c.instructions[0].args, shell("echo a\\\\"));
        // A line holding only the escape continues.
        assert_eq!(one("RUN a\\\n\\\nb\n").args, shell("ab"));
        // The file may end inside a continuation.
        assert_eq!(one("RUN a \\\n").args, shell("a"));
        assert_eq!(one("RUN a \\").args, shell("a"));
        // CRLF line ends.
        let c = p("FROM a\r\nRUN x \\\r\n  y\r\n");
        assert_eq!(c.instructions[1].args, shell("x   y"));
    }

    #[test]
    fn backslash_is_literal_with_backtick_escape() {
        let c = p("# escape=`\nFROM mcr.microsoft.com/windows\nCOPY C:\\src\\ C:\\dst\\\nRUN dir `\n  C:\\\n");
        assert_eq!(c.escape, '`');
        assert_eq!(c.instructions.len(), 3);
        assert_eq!(c.instructions[1].args, shell("C:\\src\\ C:\\dst\\"));
        assert_eq!(c.instructions[2].args, shell("dir   C:\\"));
    }

    #[test]
    fn directives() {
        let c = p("# syntax=docker/dockerfile:1\n#ESCAPE = `\n# check=skip=all\nFROM a\n");
        assert_eq!(c.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(c.escape, '`');
        assert_eq!(c.instructions[0].line, 4);
        // After a comment, a blank line or an instruction, they are comments.
        assert_eq!(p("# hello\n# escape=`\nFROM a\n").escape, '\\');
        assert_eq!(p("\n# escape=`\nFROM a\n").escape, '\\');
        assert_eq!(p("FROM a\n# escape=`\nRUN x\n").escape, '\\');
        // An unknown directive ends the directives.
        assert_eq!(p("# foo=bar\n# escape=`\nFROM a\n").escape, '\\');
        // A BOM before the first directive is fine.
        assert_eq!(p("\u{feff}# escape=`\nFROM a\n").escape, '`');
        assert_eq!(p("FROM a\n").syntax, None);
    }

    #[test]
    fn directive_errors() {
        assert_eq!(
            err("# escape=`\n# escape=\\\nFROM a\n"),
            "Containerfile:2: only one escape parser directive can be used"
        );
        assert_eq!(
            err("# syntax=a\n# SYNTAX=b\nFROM a\n"),
            "Containerfile:2: only one syntax parser directive can be used"
        );
        assert!(err("# escape=x\nFROM a\n").starts_with("Containerfile:1: invalid escape token 'x'"));
    }

    #[test]
    fn empty_file() {
        assert!(err("").contains("file with no instructions"));
        assert!(err("# just a comment\n\n").starts_with("Containerfile:2: file with no instructions"));
    }

    #[test]
    fn exec_and_shell_forms() {
        assert_eq!(one("CMD [\"a\", \"b c\"]").args, exec(&["a", "b c"]));
        assert_eq!(one("ENTRYPOINT   [ ]").args, exec(&[]));
        assert_eq!(one("CMD []").args, exec(&[]));
        assert_eq!(
            one("RUN [\"/bin/sh\",\"-c\",\"x\"]").args,
            exec(&["/bin/sh", "-c", "x"])
        );
        // Not valid JSON: shell form.
        assert_eq!(one("CMD [\"a\", b]").args, shell("[\"a\", b]"));
        assert_eq!(one("CMD ['a']").args, shell("['a']"));
        assert_eq!(one("RUN [ -f x ] && y").args, shell("[ -f x ] && y"));
        // JSON with other elements is an error, as in BuildKit.
        assert!(err("CMD [\"a\", 1]").contains("arrays must be comprised of strings only"));
        // Only some instructions read JSON.
        assert_eq!(one("USER [\"a\"]").args, shell("[\"a\"]"));
        assert_eq!(one("VOLUME [\"/a\", \"/b\"]").args, exec(&["/a", "/b"]));
        assert_eq!(one("COPY [\"a b\", \"/dst/\"]").args, exec(&["a b", "/dst/"]));
        // JSON over continuation lines.
        assert_eq!(one("CMD [\"a\", \\\n  \"b\"]").args, exec(&["a", "b"]));
    }

    #[test]
    fn command_args_forms() {
        assert_eq!(command_args(" [\"curl\", \"-f\"] "), exec(&["curl", "-f"]));
        assert_eq!(command_args("  curl -f x  "), shell("curl -f x"));
        assert_eq!(command_args("[1, 2]"), shell("[1, 2]"));
        assert_eq!(command_args("[\"a\"] trailing"), shell("[\"a\"] trailing"));
        assert_eq!(command_args(""), shell(""));
    }

    #[test]
    fn flags() {
        let i = one("COPY --from=build --chown=1:1 --link src dst");
        assert_eq!(
            i.flags,
            [
                Flag {
                    name: "from".into(),
                    value: Some("build".into())
                },
                Flag {
                    name: "chown".into(),
                    value: Some("1:1".into())
                },
                Flag {
                    name: "link".into(),
                    value: None
                },
            ]
        );
        assert_eq!(i.args, shell("src dst"));
        assert_eq!(i.flag("from"), Some(Some("build")));
        assert_eq!(i.flag("link"), Some(None));
        assert_eq!(i.flag("chmod"), None);
        assert!(i.flags[2].is_true());
        assert!(
            !Flag {
                name: "link".into(),
                value: Some("FALSE".into())
            }
            .is_true()
        );
        let i = one("RUN --mount=type=cache,target=/c --mount=type=secret,id=x --network=none make");
        assert_eq!(i.flag_values("mount"), ["type=cache,target=/c", "type=secret,id=x"]);
        assert_eq!(i.args, shell("make"));
        // Quotes in flags are removed, the value is otherwise raw.
        let i = one("COPY --chown=\"$USER:a b\" x y");
        assert_eq!(i.flag("chown"), Some(Some("$USER:a b")));
        // `--` ends the flags.
        let i = one("COPY --link -- --weird-name /dst");
        assert_eq!(i.flags.len(), 1);
        assert_eq!(i.args, shell("--weird-name /dst"));
        // Flags only lead: a later --x is an argument.
        assert_eq!(one("RUN ls --all").flags, []);
        assert_eq!(
            one("FROM --platform=linux/arm64 alpine AS b").flag("platform"),
            Some(Some("linux/arm64"))
        );
        let i = one("ADD --checksum=sha256:abc --keep-git-dir=true --exclude=*.md --exclude=x https://e/x /d");
        assert_eq!(i.flag_values("exclude"), ["*.md", "x"]);
    }

    #[test]
    fn flag_errors() {
        let e = err("COPY --platform=x a b");
        assert!(
            e.starts_with("Containerfile:1: unknown flag --platform for COPY"),
            "{e}"
        );
        let e = err("FROM a\nWORKDIR --x=1 /a");
        assert!(
            e.starts_with("Containerfile:2: unknown flag --x: WORKDIR takes no flags"),
            "{e}"
        );
        assert!(err("COPY --from=a --from=b x y").contains("duplicate flag specified: --from"));
        assert!(err("COPY --from x y").contains("missing a value on flag: --from"));
        assert!(err("COPY --link= x y").contains("missing a value on flag: --link"));
        assert!(err("COPY --link=maybe x y").contains("expecting boolean value for flag --link, not: maybe"));
        assert!(err("RUN --network=a --network=b x").contains("duplicate flag"));
        assert!(err("ADD --from=x a b").contains("unknown flag --from for ADD"));
        assert!(err("RUN --mount x").contains("missing a value on flag: --mount"));
    }

    #[test]
    fn from_checks() {
        assert_eq!(
            one("FROM alpine:3 as Build-1.x_y").args,
            shell("alpine:3 as Build-1.x_y")
        );
        assert_eq!(one("FROM a AS b").args, shell("a AS b"));
        assert!(err("FROM").contains("FROM requires either one or three arguments"));
        assert!(err("FROM a b").contains("FROM requires either one or three arguments"));
        assert!(err("FROM a AS").contains("FROM requires either one or three arguments"));
        assert!(err("FROM a LIKE b").contains("FROM requires either one or three arguments"));
        assert!(err("FROM a AS 1st").contains("invalid name for build stage: \"1st\""));
        assert!(err("FROM a AS b$c").contains("invalid name for build stage"));
    }

    #[test]
    fn argument_checks() {
        for bare in [
            "RUN",
            "CMD",
            "ENTRYPOINT",
            "EXPOSE",
            "VOLUME",
            "USER",
            "WORKDIR",
            "STOPSIGNAL",
            "ENV",
            "LABEL",
            "ARG",
            "ONBUILD",
            "HEALTHCHECK",
            "MAINTAINER",
            "SHELL",
        ] {
            let e = err(&format!("FROM a\n{bare}   \n"));
            assert!(e.starts_with("Containerfile:2: "), "{bare}: {e}");
            assert!(e.contains("requires at least one argument"), "{bare}: {e}");
        }
        assert!(err("RUN []").contains("RUN requires at least one argument"));
        assert!(err("VOLUME []").contains("VOLUME requires at least one argument"));
        assert!(err("VOLUME [\"/a\", \" \"]").contains("VOLUME specified can not be an empty string"));
        assert!(err("SHELL /bin/sh -c").contains("SHELL requires the arguments to be in JSON form"));
        assert!(err("SHELL []").contains("SHELL requires at least one argument"));
        assert_eq!(one("SHELL [\"/bin/bash\", \"-c\"]").args, exec(&["/bin/bash", "-c"]));
        assert!(err("COPY onlyone").contains("COPY requires at least two arguments"));
        assert!(err("ADD [\"one\"]").contains("ADD requires at least two arguments"));
        assert_eq!(one("COPY a b c /d/").args, shell("a b c /d/"));
        assert_eq!(one("MAINTAINER Jane <j@example.com>").keyword, Keyword::Maintainer);
        assert_eq!(one("USER a b").args, shell("a b"));
        assert_eq!(one("EXPOSE 80/tcp 443").args, shell("80/tcp 443"));
        assert_eq!(one("STOPSIGNAL SIGKILL").args, shell("SIGKILL"));
    }

    #[test]
    fn env_label_arg_checks() {
        assert_eq!(one("ENV A=1 B=\"2 3\"").args, shell("A=1 B=\"2 3\""));
        assert_eq!(one("ENV PATH /usr/bin:/bin").args, shell("PATH /usr/bin:/bin"));
        assert_eq!(one("LABEL \"com.example.x\"=\"a b\" y=z").keyword, Keyword::Label);
        assert!(err("ENV A").contains("ENV must have two arguments"));
        assert!(err("LABEL a=1 b").contains("Syntax error - can't find = in \"b\""));
        assert!(err("ENV =x").contains("ENV names can not be blank"));
        assert_eq!(one("ARG a=1 b=2").args, shell("a=1 b=2"));
        assert_eq!(one("ARG VERSION").args, shell("VERSION"));
        assert_eq!(one("ARG a b").args, shell("a b"));
        assert!(err("ARG =1").contains("ARG names can not be blank"));
    }

    #[test]
    fn healthcheck_checks() {
        assert_eq!(one("HEALTHCHECK NONE").args, shell("NONE"));
        let i = one("HEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD curl -f http://x/ || exit 1");
        assert_eq!(i.args, shell("CMD curl -f http://x/ || exit 1"));
        assert_eq!(i.flag("interval"), Some(Some("5s")));
        assert_eq!(one("healthcheck cmd [\"true\"]").args, shell("cmd [\"true\"]"));
        assert!(err("HEALTHCHECK NONE x").contains("HEALTHCHECK NONE takes no arguments"));
        assert!(err("HEALTHCHECK --interval=1s NONE").contains("HEALTHCHECK NONE takes no arguments"));
        assert!(err("HEALTHCHECK CMD").contains("Missing command after HEALTHCHECK CMD"));
        assert!(err("HEALTHCHECK CMD []").contains("Missing command after HEALTHCHECK CMD"));
        assert!(err("HEALTHCHECK CMD-SHELL x").contains("Unknown type \"CMD-SHELL\" in HEALTHCHECK (try CMD)"));
        assert!(err("HEALTHCHECK --interval=soon CMD x").contains("--interval"));
        assert!(err("HEALTHCHECK --retries=-1 CMD x").contains("--retries cannot be negative (-1)"));
        assert!(err("HEALTHCHECK --mount=x CMD x").contains("unknown flag --mount for HEALTHCHECK"));
    }

    #[test]
    fn onbuild() {
        let i = one("ONBUILD RUN echo hi");
        assert_eq!(i.keyword, Keyword::Onbuild);
        assert_eq!(i.args, shell("RUN echo hi"));
        assert_eq!(one("onbuild copy --from=x a b").args, shell("copy --from=x a b"));
        assert!(err("ONBUILD ONBUILD RUN x").contains("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
        assert!(err("ONBUILD from a").contains("FROM isn't allowed as an ONBUILD trigger"));
        assert!(err("ONBUILD MAINTAINER me").contains("MAINTAINER isn't allowed as an ONBUILD trigger"));
        assert!(err("ONBUILD BOGUS x").contains("unknown instruction: BOGUS"));
        assert!(err("ONBUILD COPY x").contains("COPY requires at least two arguments"));
        assert!(err("ONBUILD --x RUN y").contains("unknown flag --x: ONBUILD takes no flags"));
        assert!(err("FROM a\nONBUILD COPY --bad=1 a b").starts_with("Containerfile:2: unknown flag --bad for COPY"));
    }

    #[test]
    fn onbuild_heredoc() {
        let c = p("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nCMD x\n");
        assert_eq!(c.instructions.len(), 3);
        assert_eq!(c.instructions[1].heredocs[0].content, "echo hi\n");
        assert_eq!(c.instructions[2].line, 5);
    }

    #[test]
    fn parse_instruction_single() {
        let i = parse_instruction("image trigger", "RUN echo hi", 7, '\\').unwrap();
        assert_eq!(i.keyword, Keyword::Run);
        assert_eq!(i.line, 7);
        assert_eq!(i.args, shell("echo hi"));
        let i = parse_instruction("t", "COPY a `\n  b", 1, '`').unwrap();
        assert_eq!(i.args, shell("a   b"));
        let i = parse_instruction("t", "RUN <<EOF\nset -e\nEOF", 1, '\\').unwrap();
        assert_eq!(i.heredocs[0].content, "set -e\n");
        let e = format!("{:#}", parse_instruction("t", "FOO x", 3, '\\').unwrap_err());
        assert_eq!(e, "t:3: unknown instruction: FOO");
        let e = format!("{:#}", parse_instruction("t", "  ", 3, '\\').unwrap_err());
        assert_eq!(e, "t:3: empty instruction");
        let e = format!("{:#}", parse_instruction("t", "RUN a\nRUN b", 3, '\\').unwrap_err());
        assert!(e.starts_with("t:4: expected one instruction"), "{e}");
    }

    #[test]
    fn heredoc_basic() {
        let c = p("FROM a\nRUN <<EOF\n#!/bin/sh\necho \"$HOME\" \\\n\n  # kept\nEOF\nRUN after\n");
        assert_eq!(c.instructions.len(), 3);
        let run = &c.instructions[1];
        assert_eq!(run.args, shell("<<EOF"));
        assert_eq!(
            run.heredocs,
            [Heredoc {
                name: "EOF".into(),
                content: "#!/bin/sh\necho \"$HOME\" \\\n\n  # kept\n".into(),
                expand: true,
                chomp_tabs: false,
            }]
        );
        assert_eq!(c.instructions[2].line, 8);
    }

    #[test]
    fn heredoc_quoting_and_chomp() {
        let i = one("RUN <<'EOF' cat\n$X\nEOF\n");
        assert!(!i.heredocs[0].expand);
        assert_eq!(i.heredocs[0].name, "EOF");
        assert_eq!(i.args, shell("<<'EOF' cat"));
        let i = one("RUN <<\"EOF\"\n$X\nEOF\n");
        assert!(!i.heredocs[0].expand);
        let i = one("RUN <<-EOT\n\tif x; then\n\t\ty\n\tfi\n\tEOT\n");
        assert!(i.heredocs[0].chomp_tabs);
        assert!(i.heredocs[0].expand);
        assert_eq!(i.heredocs[0].content, "if x; then\ny\nfi\n");
        // Without `-`, a tab-indented terminator does not end the body.
        let e = err("RUN <<EOT\nx\n\tEOT\n");
        assert!(e.starts_with("Containerfile:1: unterminated heredoc \"EOT\""), "{e}");
        // `<< EOF` with blanks and an fd prefix.
        assert_eq!(one("RUN cat << EOF\nx\nEOF").heredocs[0].content, "x\n");
        assert_eq!(one("RUN cat 3<<EOF\nx\nEOF").heredocs[0].name, "EOF");
    }

    #[test]
    fn heredoc_several_and_copy() {
        let c = p("FROM a\nCOPY <<a.txt <<b.txt /dest/\nA\na.txt\nB1\nB2\nb.txt\n");
        let copy = &c.instructions[1];
        assert_eq!(copy.args, shell("<<a.txt <<b.txt /dest/"));
        let docs: Vec<(&str, &str)> = copy
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str()))
            .collect();
        assert_eq!(docs, [("a.txt", "A\n"), ("b.txt", "B1\nB2\n")]);
        let i = one("COPY --chmod=755 <<EOF /usr/bin/x\n#!/bin/sh\nEOF\n");
        assert_eq!(i.heredocs.len(), 1);
        assert!(err("COPY a <<EOF\nx\nEOF\n").contains("COPY cannot accept a heredoc as a destination"));
        // Heredoc sources only: the marker counts as a source word.
        assert!(err("COPY <<EOF\nx\nEOF\n").contains("COPY requires at least two arguments"));
    }

    #[test]
    fn heredoc_not_recognised() {
        // Inside quotes, glued to a word, in JSON form, a here-string, or in
        // instructions that take none.
        assert!(one("RUN echo '<<EOF'").heredocs.is_empty());
        assert!(one("RUN echo \"a <<EOF\"").heredocs.is_empty());
        assert!(one("RUN cat<<EOF").heredocs.is_empty());
        assert!(one("RUN [\"cat\", \"<<EOF\"]").heredocs.is_empty());
        assert!(one("RUN cat <<<word").heredocs.is_empty());
        assert!(one("CMD cat <<EOF").heredocs.is_empty());
        assert!(one("RUN echo 'open <<EOF").heredocs.is_empty());
        assert!(one("RUN a \\<<EOF").heredocs.is_empty());
    }

    #[test]
    fn heredoc_body_is_verbatim_and_lines_counted() {
        let text = "FROM a\nRUN <<EOF bash && \\\n  echo done\nRUN not an instruction\n# not a comment\nEOF\nFOO\n";
        let e = err(text);
        assert_eq!(e, "Containerfile:7: unknown instruction: FOO");
        let c = p(&text.replace("FOO\n", ""));
        let run = &c.instructions[1];
        assert_eq!(run.args, shell("<<EOF bash &&   echo done"));
        assert_eq!(run.heredocs[0].content, "RUN not an instruction\n# not a comment\n");
    }

    #[test]
    fn heredoc_crlf_terminator() {
        let i = one("RUN <<EOF\r\nx\r\nEOF\r\n");
        assert_eq!(i.heredocs[0].content, "x\r\n");
    }

    #[test]
    fn heredoc_unterminated() {
        let e = err("FROM a\nRUN <<EOF\necho\n");
        assert!(e.starts_with("Containerfile:2: unterminated heredoc"), "{e}");
        // The second of two is missing.
        assert!(err("COPY <<a <<b /d\nx\na\n").contains("unterminated heredoc \"b\""));
    }

    #[test]
    fn heredoc_marker_parsing() {
        assert_eq!(heredoc_marker("<<EOF"), Some(("EOF".into(), true, false)));
        assert_eq!(heredoc_marker("<<-EOF"), Some(("EOF".into(), true, true)));
        assert_eq!(heredoc_marker("<<E\"O\"F"), Some(("EOF".into(), false, false)));
        assert_eq!(heredoc_marker("<<\\EOF"), Some(("EOF".into(), true, false)));
        assert_eq!(heredoc_marker("2<<'X Y'"), Some(("X Y".into(), false, false)));
        assert_eq!(heredoc_marker("<<"), None);
        assert_eq!(heredoc_marker("<<<x"), None);
        assert_eq!(heredoc_marker("a<<x"), None);
        assert_eq!(heredoc_marker("<<\"open"), None);
    }
}

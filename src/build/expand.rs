//! Word expansion for Containerfile arguments: quote removal, escapes and
//! `$VAR` / `${VAR...}` substitution with the semantics of BuildKit's shell
//! lexer (moby/buildkit `frontend/dockerfile/shell/lex.go`), plus the
//! `KEY=value` pair splitting of ENV, LABEL and ARG.
//!
//! Rules, as in BuildKit:
//! - outside quotes the escape character protects the next character (and is
//!   dropped); an escape at the very end is dropped;
//! - inside `'...'` nothing is special;
//! - inside `"..."` `$` expands and the escape character protects only `"`,
//!   `$` and itself (elsewhere it stays literal);
//! - `$name` takes letters, digits and `_`; `$1`-style names are digit runs;
//!   `$@ $* $# $? $- $$ $! $0` are one-character names; a `$` followed by
//!   anything else is literal;
//! - `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?w}`, `${V?w}`,
//!   and the pattern forms `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`,
//!   `${V/p/r}`, `${V//p/r}` (patterns: `*`, `?`, `\` escapes);
//! - unset variables expand to the empty string.

use anyhow::{Context, Result, anyhow, bail};

/// Expands one word: quotes removed, `$VAR` `${VAR}` `${VAR:-default}` `${VAR-default}` `${VAR:+alt}` `${VAR+alt}`
/// (`${VAR:?msg}` → error with msg), escapes handled (the escape char protects the next char; inside single quotes
/// nothing is special; inside double quotes `$` expands and escape only protects `"`, `$`, escape). Unset
/// variables expand to "". Whitespace is kept (one word).
pub fn expand_word(s: &str, escape: char, vars: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut lexer = Lexer::new(s, escape, vars);
    let words = lexer.run(false).with_context(|| format!("failed to process {s:?}"))?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Splits into words on unquoted whitespace, expanding as expand_word; an expansion does NOT split into
/// several words (BuildKit). Empty input → empty vec.
///
/// A word that is empty after expansion is dropped unless it contained quotes
/// (`""` is one empty word, `$UNSET` is none).
pub fn expand_words(s: &str, escape: char, vars: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let mut lexer = Lexer::new(s, escape, vars);
    lexer.run(true).with_context(|| format!("failed to process {s:?}"))
}

/// Like [`expand_words`], but the result of an unquoted expansion is split on
/// whitespace too, as BuildKit's `ProcessWords` does (EXPOSE uses this:
/// `EXPOSE $PORTS` with `PORTS="80 443"` exposes two ports). Empty words are
/// dropped, quoted or not, as in BuildKit.
pub fn expand_fields(s: &str, escape: char, vars: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let mut lexer = Lexer::new(s, escape, vars);
    lexer.split_expansions = true;
    let words = lexer.run(true).with_context(|| format!("failed to process {s:?}"))?;
    Ok(words.into_iter().filter(|w| !w.is_empty()).collect())
}

/// ENV / LABEL / ARG pairs: `K=V K2="v 2"` (each value expanded with expand_word) or the legacy one-pair form
/// `ENV KEY rest of line` (value = rest, expanded). For ARG, `name` without `=` gives (name, None).
///
/// Keys are expanded too (BuildKit does). The legacy form is chosen when the
/// first word has no `=` and there is more than one word; a single word
/// without `=` gives `(name, None)`, which ENV and LABEL must refuse (the
/// parser already does). `ARG a b` (two names) needs [`arg_pairs`]: here it
/// reads as the legacy pair `a` = `b`.
pub fn key_values(
    s: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>> {
    let words = raw_words(s, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if words.len() > 1 && !words[0].contains('=') {
        let trimmed = s.trim();
        let split = trimmed.find(|c: char| c.is_whitespace()).unwrap_or(trimmed.len());
        let (key, value) = (&trimmed[..split], trimmed[split..].trim_start());
        let key = expand_word(key, escape, vars)?;
        if key.is_empty() {
            bail!("blank name in {s:?}");
        }
        return Ok(vec![(key, Some(expand_word(value, escape, vars)?))]);
    }
    pairs_of(&words, s, escape, vars)
}

/// ARG pairs with BuildKit's ARG rules: every word is `name` or
/// `name=default`, there is no legacy `KEY value` form (`ARG a b` declares
/// two arguments). Names and defaults are expanded.
pub fn arg_pairs(
    s: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>> {
    pairs_of(&raw_words(s, escape), s, escape, vars)
}

fn pairs_of(
    words: &[String],
    s: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::with_capacity(words.len());
    for word in words {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word.as_str(), None),
        };
        let key = expand_word(key, escape, vars)?;
        if key.is_empty() {
            bail!("blank name in {word:?} (in {s:?})");
        }
        let value = value.map(|v| expand_word(v, escape, vars)).transpose()?;
        out.push((key, value));
    }
    Ok(out)
}

/// Splits on unquoted whitespace keeping quotes and escapes as written (the
/// Dockerfile parser's `parseWords`): `a="b c" d` → `a="b c"`, `d`. An
/// unterminated quote runs to the end; a trailing lone escape is dropped.
pub fn raw_words(s: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if let Some(q) = quote {
            if ch == q {
                quote = None;
                word.push(ch);
            } else if ch == escape && q != '\'' {
                if i == chars.len() {
                    quote = None;
                    continue;
                }
                word.push(ch);
                word.push(chars[i]);
                i += 1;
            } else {
                word.push(ch);
            }
            continue;
        }
        if ch.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            word.clear();
            in_word = false;
            blank_ok = false;
            continue;
        }
        in_word = true;
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
            word.push(ch);
        } else if ch == escape {
            if i == chars.len() {
                continue;
            }
            word.push(ch);
            word.push(chars[i]);
            i += 1;
        } else {
            word.push(ch);
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// The expansion state machine over one input string.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Fn(&str) -> Option<String>,
    /// Unquoted expansion results split into words (BuildKit ProcessWords).
    split_expansions: bool,
}

/// The word being built in [`Lexer::run`].
#[derive(Default)]
struct WordBuf {
    words: Vec<String>,
    cur: String,
    /// The current word exists even if empty (it had quotes or text).
    started: bool,
}

impl WordBuf {
    fn push_str(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }
    fn push(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }
    fn end(&mut self) {
        if self.started {
            self.words.push(std::mem::take(&mut self.cur));
        }
        self.started = false;
    }
}

impl<'a> Lexer<'a> {
    fn new(s: &str, escape: char, vars: &'a dyn Fn(&str) -> Option<String>) -> Lexer<'a> {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            escape,
            vars,
            split_expansions: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// The whole input: one word (`split` false, whitespace kept) or the
    /// words separated by unquoted whitespace.
    fn run(&mut self, split: bool) -> Result<Vec<String>> {
        let mut buf = WordBuf {
            started: !split,
            ..WordBuf::default()
        };
        while let Some(ch) = self.peek() {
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    if split && self.split_expansions {
                        for c in value.chars() {
                            if c.is_whitespace() {
                                buf.end();
                            } else {
                                buf.push(c);
                            }
                        }
                    } else if !value.is_empty() {
                        buf.push_str(&value);
                    }
                }
                '\'' => {
                    let s = self.single_quoted()?;
                    buf.push_str(&s);
                }
                '"' => {
                    let s = self.double_quoted()?;
                    buf.push_str(&s);
                }
                c if c == self.escape => {
                    self.pos += 1;
                    match self.next() {
                        Some(c) => buf.push(c),
                        None => break,
                    }
                }
                c if split && c.is_whitespace() => {
                    self.pos += 1;
                    buf.end();
                }
                c => {
                    self.pos += 1;
                    buf.push(c);
                }
            }
        }
        if split {
            buf.end();
        } else {
            buf.words.push(buf.cur);
            return Ok(buf.words);
        }
        Ok(buf.words)
    }

    /// The word of a `${V<op>word}` up to the closing `stop` (consumed).
    /// `raw_escapes` keeps escape characters (patterns need them).
    fn until(&mut self, stop: char, raw_escapes: bool) -> Result<String> {
        let mut out = String::new();
        loop {
            let Some(ch) = self.peek() else {
                bail!("syntax error: missing '{stop}'");
            };
            match ch {
                c if c == stop => {
                    self.pos += 1;
                    return Ok(out);
                }
                '$' => out.push_str(&self.dollar()?),
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                c if c == self.escape => {
                    self.pos += 1;
                    if raw_escapes {
                        out.push(c);
                    }
                    match self.next() {
                        Some(c) => out.push(c),
                        None => bail!("syntax error: missing '{stop}'"),
                    }
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => bail!("unexpected end of statement while looking for matching single-quote"),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => bail!("unexpected end of statement while looking for matching double-quote"),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.vars)(name)
    }

    /// `$...` at the current position (the `$` not yet consumed).
    fn dollar(&mut self) -> Result<String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => bail!("syntax error: missing '}}'"),
            Some('{' | '}' | ':') => bail!("syntax error: bad substitution"),
            Some(_) => {}
        }
        let name = self.name();
        let Some(op) = self.next() else {
            bail!("syntax error: missing '}}'");
        };
        match op {
            '}' => Ok(self.lookup(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let (null_is_unset, op) = if op == ':' {
                    match self.next() {
                        Some(c @ ('+' | '-' | '?')) => (true, c),
                        Some(c) => bail!("unsupported modifier (:{c}) in substitution"),
                        None => bail!("syntax error: missing '}}'"),
                    }
                } else {
                    (false, op)
                };
                let pattern_op = op == '#' || op == '%';
                let word = self.until('}', pattern_op)?;
                let value = self.lookup(&name);
                let unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    '-' => Ok(if unset { word } else { value.unwrap_or_default() }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if unset {
                            let msg = if !word.is_empty() {
                                word
                            } else if value.is_none() {
                                "is not allowed to be unset".to_string()
                            } else {
                                "is not allowed to be empty".to_string()
                            };
                            bail!("{name}: {msg}");
                        }
                        Ok(value.unwrap_or_default())
                    }
                    _ => {
                        let value = value.unwrap_or_default();
                        let (greedy, pat) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let pat = Glob::new(pat, self.escape)?;
                        Ok(if op == '#' {
                            pat.trim_prefix(&value, greedy)
                        } else {
                            pat.trim_suffix(&value, greedy)
                        })
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self
                    .until('/', true)
                    .map_err(|_| anyhow!("syntax error: missing '/' in ${{}}"))?;
                let replacement = self.until('}', false)?;
                let value = self.lookup(&name).unwrap_or_default();
                let glob = Glob::new(&pattern, self.escape)?;
                Ok(glob.replace(&value, &replacement, all))
            }
            c => bail!("unsupported modifier ({c}) in substitution"),
        }
    }

    /// A variable name: a digit run, one special-parameter character, or
    /// letters, digits and `_`. Empty when none starts here.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

/// A shell pattern for `${V#p}`, `${V%p}` and `${V/p/r}`: `*` any run of
/// characters, `?` one character, the escape character makes the next
/// character literal.
struct Glob {
    toks: Vec<GlobTok>,
}

#[derive(Clone, Copy)]
enum GlobTok {
    Lit(char),
    Any,
    One,
}

impl Glob {
    fn new(pattern: &str, escape: char) -> Result<Glob> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            toks.push(match c {
                '*' => GlobTok::Any,
                '?' => GlobTok::One,
                c if c == escape => match chars.next() {
                    Some(n) => GlobTok::Lit(n),
                    None => bail!("invalid pattern ({pattern}) in substitution: trailing escape"),
                },
                c => GlobTok::Lit(c),
            });
        }
        Ok(Glob { toks })
    }

    /// Whether the whole of `s` matches.
    fn matches(&self, s: &[char]) -> bool {
        // reach[j]: the first i tokens can match s[..j].
        let mut reach = vec![false; s.len() + 1];
        reach[0] = true;
        for tok in &self.toks {
            let mut next = vec![false; s.len() + 1];
            match tok {
                GlobTok::Any => {
                    let mut any = false;
                    for j in 0..=s.len() {
                        any |= reach[j];
                        next[j] = any;
                    }
                }
                GlobTok::One => next[1..].copy_from_slice(&reach[..s.len()]),
                GlobTok::Lit(c) => {
                    for j in 1..=s.len() {
                        next[j] = reach[j - 1] && s[j - 1] == *c;
                    }
                }
            }
            reach = next;
        }
        reach[s.len()]
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=chars.len()).rev())
        } else {
            Box::new(0..=chars.len())
        };
        match ends.find(|&end| self.matches(&chars[..end])) {
            Some(end) => chars[end..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new(0..=chars.len())
        } else {
            Box::new((0..=chars.len()).rev())
        };
        match starts.find(|&start| self.matches(&chars[start..])) {
            Some(start) => chars[..start].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the first (or every) leftmost-longest non-empty match.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i < chars.len() {
            if all || !replaced {
                let end = (i + 1..=chars.len()).rev().find(|&end| self.matches(&chars[i..end]));
                if let Some(end) = end {
                    out.push_str(replacement);
                    i = end;
                    replaced = true;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PWD" => Some("/home".into()),
            "SHELL" => Some("bash".into()),
            "NULL" => Some(String::new()),
            "KOREAN" => Some("한국어".into()),
            "space" => Some("abc  def".into()),
            "leading" => Some("  ab c".into()),
            "FILE" => Some("dir/sub/name.tar.gz".into()),
            _ => None,
        }
    }

    fn word(s: &str) -> Result<String> {
        expand_word(s, '\\', &env)
    }

    fn words(s: &str) -> Vec<String> {
        expand_words(s, '\\', &env).unwrap()
    }

    /// Cases from BuildKit's shell/envVarTest (input, expected; None = error).
    #[test]
    fn buildkit_word_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("hello", Some("hello")),
            ("he'll'o", Some("hello")),
            ("he'llo", None),
            ("he\\'llo", Some("he'llo")),
            ("he\\\\'llo", None),
            ("abc\\tdef", Some("abctdef")),
            ("\"abc\\tdef\"", Some("abc\\tdef")),
            ("\"abc\\\\tdef\"", Some("abc\\tdef")),
            ("'abc\\tdef'", Some("abc\\tdef")),
            ("hello\\", Some("hello")),
            ("hello\\\\", Some("hello\\")),
            ("\"hello", None),
            ("\"hello\\\"", None),
            ("\"hel'lo\"", Some("hel'lo")),
            ("'hello", None),
            ("'hello\\'", Some("hello\\")),
            ("\"''\"", Some("''")),
            ("$.", Some("$.")),
            ("he$1x", Some("hex")),
            ("he$.x", Some("he$.x")),
            ("he$pwd.", Some("he.")),
            ("he$PWD", Some("he/home")),
            ("he\\$PWD", Some("he$PWD")),
            ("he\\\\$PWD", Some("he\\/home")),
            ("\"he\\$PWD\"", Some("he$PWD")),
            ("\"he\\\\$PWD\"", Some("he\\/home")),
            ("\\${}", Some("${}")),
            ("\\${}aaa", Some("${}aaa")),
            ("${}", None),
            ("${}aaa", None),
            ("he${}xx", None),
            ("he${hi}xx", Some("hexx")),
            ("he${PWD}", Some("he/home")),
            ("he${.}", None),
            ("he${XXX:-000}xx", Some("he000xx")),
            ("he${PWD:-000}xx", Some("he/homexx")),
            ("he${XXX:-$PWD}xx", Some("he/homexx")),
            ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
            ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
            ("he${XXX:YYY}", None),
            ("he${XXX?}", None),
            ("he${XXX:?}", None),
            ("he${PWD?}", Some("he/home")),
            ("he${PWD:?}", Some("he/home")),
            ("he${NULL?}", Some("he")),
            ("he${NULL:?}", None),
            ("he${XXX:+${PWD}}xx", Some("hexx")),
            ("he${PWD:+${XXX}}xx", Some("hexx")),
            ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
            ("he${XXX:+000}xx", Some("hexx")),
            ("he${PWD:+000}xx", Some("he000xx")),
            ("'he${XX}'", Some("he${XX}")),
            ("\"he${PWD}\"", Some("he/home")),
            ("\"he'$PWD'\"", Some("he'/home'")),
            ("'$PWD'", Some("$PWD")),
            ("'\\$PWD'", Some("\\$PWD")),
            ("'\"hello\"'", Some("\"hello\"")),
            ("he${PWD", None),
            ("he${PWD:=000}xx", None),
            ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
            ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
            ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
            ("안녕$KOREAN", Some("안녕한국어")),
            ("안'녕'하세요", Some("안녕하세요")),
            ("${{aaa}", None),
            ("${aaa}}", Some("}")),
            ("${aaa", None),
            ("${aaa:-bbb}}", Some("bbb}")),
            ("${aaa:-bbb", None),
            ("${aaa:-${bbb:-ccc}}", Some("ccc")),
            ("${aaa:-bbb ${foo}", None),
            ("${aaa:-bbb {foo}", Some("bbb {foo")),
            ("${:}", None),
            ("${:-bbb}", None),
            ("$1", Some("")),
            ("${1:-bbb}", Some("bbb")),
            ("$999aaa", Some("aaa")),
            ("${001:-bbb}aaa", Some("bbbaaa")),
            ("$@@@", Some("@@")),
            ("${@:-bbb}", Some("bbb")),
            ("$$", Some("")),
            ("${#:+bbb}", Some("")),
            ("$", Some("$")),
            ("a$ b", Some("a$ b")),
        ];
        for (input, want) in cases {
            let got = word(input);
            match want {
                Some(w) => assert_eq!(got.as_deref().ok(), Some(*w), "input {input:?}: {got:?}"),
                None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
            }
        }
    }

    #[test]
    fn word_keeps_whitespace() {
        assert_eq!(word("  a  b ").unwrap(), "  a  b ");
        assert_eq!(word("").unwrap(), "");
        assert_eq!(word("x${space}y").unwrap(), "xabc  defy");
    }

    #[test]
    fn error_messages() {
        let e = format!("{:#}", word("${XXX:?need it set}").unwrap_err());
        assert!(e.contains("XXX: need it set"), "{e}");
        let e = format!("{:#}", word("${XXX?}").unwrap_err());
        assert!(e.contains("XXX: is not allowed to be unset"), "{e}");
        let e = format!("{:#}", word("${NULL:?}").unwrap_err());
        assert!(e.contains("NULL: is not allowed to be empty"), "{e}");
        let e = format!("{:#}", word("'abc").unwrap_err());
        assert!(e.contains("single-quote"), "{e}");
        let e = format!("{:#}", word("\"abc").unwrap_err());
        assert!(e.contains("double-quote"), "{e}");
        let e = format!("{:#}", word("${abc").unwrap_err());
        assert!(e.contains("missing '}'"), "{e}");
        let e = format!("{:#}", word("${}").unwrap_err());
        assert!(e.contains("bad substitution"), "{e}");
        let e = format!("{:#}", word("${a:=b}").unwrap_err());
        assert!(e.contains("unsupported modifier (:=)"), "{e}");
        let e = format!("{:#}", word("${a:#b}").unwrap_err());
        assert!(e.contains("unsupported modifier (:#)"), "{e}");
        let e = format!("{:#}", word("${a^b}").unwrap_err());
        assert!(e.contains("unsupported modifier (^)"), "{e}");
        assert!(e.contains("failed to process \"${a^b}\""), "{e}");
    }

    #[test]
    fn words_split_on_unquoted_whitespace_only() {
        assert_eq!(words("hello there     "), ["hello", "there"]);
        assert_eq!(words("hello\\ there"), ["hello there"]);
        assert_eq!(words("hello\\\" there"), ["hello\"", "there"]);
        assert_eq!(words("hello\" there  \""), ["hello there  "]);
        assert_eq!(words("a 'b c' \"d  e\"f"), ["a", "b c", "d  ef"]);
        assert!(words("").is_empty());
        assert!(words("   \t ").is_empty());
        assert!(expand_words("hello\" there", '\\', &env).is_err());
    }

    #[test]
    fn words_expansion_does_not_split() {
        assert_eq!(words("hello${space}bye"), ["helloabc  defbye"]);
        assert_eq!(words("$space /dst"), ["abc  def", "/dst"]);
        assert_eq!(words("x${leading} y"), ["x  ab c", "y"]);
    }

    #[test]
    fn words_empty_expansion_and_empty_quotes() {
        assert_eq!(words("$UNSET a"), ["a"]);
        assert_eq!(words("\"\" a"), ["", "a"]);
        assert_eq!(words("''"), [""]);
        assert_eq!(words("\"$UNSET\""), [""]);
        assert_eq!(words("x$UNSET"), ["x"]);
    }

    #[test]
    fn fields_split_expansions_like_processwords() {
        // From BuildKit's shell/wordsTest.
        let f = |s: &str| expand_fields(s, '\\', &env).unwrap();
        assert_eq!(f("hello${space}bye"), ["helloabc", "defbye"]);
        assert_eq!(f("hello\"${space}\"bye"), ["helloabc  defbye"]);
        assert_eq!(f("hello \"${space}\"bye"), ["hello", "abc  defbye"]);
        assert_eq!(f("hello${leading}def"), ["hello", "ab", "cdef"]);
        assert_eq!(f("hello\"${leading}\" def"), ["hello  ab c", "def"]);
        assert_eq!(f("$UNSET \"\""), Vec::<String>::new());
    }

    #[test]
    fn backtick_escape() {
        let w = |s: &str| expand_word(s, '`', &env).unwrap();
        assert_eq!(w("C:\\dir\\$PWD"), "C:\\dir\\/home");
        assert_eq!(w("a`$PWD"), "a$PWD");
        assert_eq!(w("\"a`\"b\""), "a\"b");
        assert_eq!(w("\"a\\b\""), "a\\b");
        assert_eq!(w("a` b"), "a b");
        assert_eq!(expand_words("a` b c", '`', &env).unwrap(), ["a b", "c"]);
    }

    #[test]
    fn pattern_modifiers() {
        assert_eq!(word("${FILE#*/}").unwrap(), "sub/name.tar.gz");
        assert_eq!(word("${FILE##*/}").unwrap(), "name.tar.gz");
        assert_eq!(word("${FILE%.*}").unwrap(), "dir/sub/name.tar");
        assert_eq!(word("${FILE%%.*}").unwrap(), "dir/sub/name");
        assert_eq!(word("${FILE#nomatch}").unwrap(), "dir/sub/name.tar.gz");
        assert_eq!(word("${FILE%???}").unwrap(), "dir/sub/name.tar");
        assert_eq!(word("${FILE/\\//-}").unwrap(), "dir-sub/name.tar.gz");
        assert_eq!(word("${FILE//\\//-}").unwrap(), "dir-sub-name.tar.gz");
        assert_eq!(word("${FILE//a/A}").unwrap(), "dir/sub/nAme.tAr.gz");
        assert_eq!(word("${FILE/s*b/X}").unwrap(), "dir/X/name.tar.gz");
        assert_eq!(word("${UNSET#x}").unwrap(), "");
        assert_eq!(word("${PWD#\\*}").unwrap(), "/home");
        assert!(word("${FILE/x").is_err());
    }

    #[test]
    fn unset_lookup_is_empty() {
        let none = |_: &str| None;
        assert_eq!(expand_word("a${X}b$Y", '\\', &none).unwrap(), "ab");
    }

    #[test]
    fn key_values_new_form() {
        let kv = key_values("A=1 B=\"two words\" C='$PWD' D=$PWD E= F=\"\"", '\\', &env).unwrap();
        let want: Vec<(String, Option<String>)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "$PWD"),
            ("D", "/home"),
            ("E", ""),
            ("F", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect();
        assert_eq!(kv, want);
        let kv = key_values("X=a\\ b Y=c=d", '\\', &env).unwrap();
        assert_eq!(
            kv,
            [
                ("X".to_string(), Some("a b".to_string())),
                ("Y".to_string(), Some("c=d".to_string()))
            ]
        );
        let kv = key_values("${SHELL}_KEY=v", '\\', &env).unwrap();
        assert_eq!(kv, [("bash_KEY".to_string(), Some("v".to_string()))]);
    }

    /// BuildKit's parser testfiles/env: the raw split, then the expansion.
    #[test]
    fn key_values_buildkit_env_corpus() {
        let line = "name=value     name1=value1     name2=\"value2a            value2b\"     \
                    name3=\"value3a\\n\\\"value3b\\\"\" \tname4=\"value4a\\\\nvalue4b\"";
        assert_eq!(
            raw_words(line, '\\'),
            [
                "name=value",
                "name1=value1",
                "name2=\"value2a            value2b\"",
                "name3=\"value3a\\n\\\"value3b\\\"\"",
                "name4=\"value4a\\\\nvalue4b\""
            ]
        );
        let kv = key_values(line, '\\', &env).unwrap();
        let values: Vec<&str> = kv.iter().map(|(_, v)| v.as_deref().unwrap()).collect();
        assert_eq!(
            values,
            [
                "value",
                "value1",
                "value2a            value2b",
                "value3a\\n\"value3b\"",
                "value4a\\nvalue4b"
            ]
        );
        let one = |s: &str| key_values(s, '\\', &env).unwrap().remove(0).1.unwrap();
        assert_eq!(one("name='a\\'b''"), "a\\b");
        assert_eq!(one("name=\"a\\'b\""), "a\\'b");
        assert_eq!(one("name=value\\ value2"), "value value2");
        assert_eq!(one("name='value\"double quote\"value2'"), "value\"double quote\"value2");
    }

    #[test]
    fn key_values_legacy_form() {
        let kv = key_values("PATH /usr/bin:$PWD   and  more ", '\\', &env).unwrap();
        assert_eq!(
            kv,
            [("PATH".to_string(), Some("/usr/bin:/home   and  more".to_string()))]
        );
        let kv = key_values("MSG \"quoted  text\"", '\\', &env).unwrap();
        assert_eq!(kv, [("MSG".to_string(), Some("quoted  text".to_string()))]);
    }

    #[test]
    fn key_values_arg_names() {
        let kv = key_values("VERSION", '\\', &env).unwrap();
        assert_eq!(kv, [("VERSION".to_string(), None)]);
        let kv = key_values("A=1 B", '\\', &env).unwrap();
        assert_eq!(kv, [("A".to_string(), Some("1".to_string())), ("B".to_string(), None)]);
        let kv = arg_pairs("A B=2 C", '\\', &env).unwrap();
        assert_eq!(
            kv,
            [
                ("A".to_string(), None),
                ("B".to_string(), Some("2".to_string())),
                ("C".to_string(), None)
            ]
        );
        assert!(key_values("", '\\', &env).unwrap().is_empty());
    }

    #[test]
    fn key_values_errors() {
        assert!(key_values("=x", '\\', &env).is_err());
        assert!(key_values("A=\"open", '\\', &env).is_err());
        assert!(arg_pairs("A =b", '\\', &env).is_err());
    }

    #[test]
    fn raw_words_keep_quotes() {
        assert_eq!(
            raw_words("a=\"b c\"  d='e f' g\\ h", '\\'),
            ["a=\"b c\"", "d='e f'", "g\\ h"]
        );
        assert_eq!(raw_words("x=\"\" \"\"", '\\'), ["x=\"\"", "\"\""]);
        assert_eq!(raw_words("a\\", '\\'), ["a"]);
        assert_eq!(raw_words("'a\\' b", '\\'), ["'a\\'", "b"]);
        assert_eq!(raw_words("\"open b", '\\'), ["\"open b"]);
        assert!(raw_words("  ", '\\').is_empty());
    }
}

//! `.containerignore` / `.dockerignore`: which files of the build context
//! COPY and ADD never see, with the pattern semantics of moby/patternmatcher
//! (and of its `ignorefile` reader), which BuildKit and podman both follow.
//!
//! A path is excluded when the last pattern that matches it, or one of its
//! parent directories, is not a `!exception`. Patterns are cleaned
//! (`./a//b/../c` → `a/c`, a leading `/` dropped) and then matched against
//! the whole '/'-separated path relative to the context:
//! `*` is any run of characters but `/`, `?` one character but `/`, `[...]`
//! a class (`^` or `!` negates, `\` escapes inside), `\x` a literal `x`, and
//! `**` any number of whole directories (`**/x`, `a/**/b`, `a/**`). As in
//! patternmatcher, `**` followed only by literals (`**/name`, `**name`)
//! matches any path ending that way, and `name**` any path starting that way.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// Compiled ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// A `!` pattern: re-includes what it matches.
    exception: bool,
    kind: Kind,
}

/// How a pattern matches, as patternmatcher classifies them.
#[derive(Debug, Clone)]
enum Kind {
    /// `.`: the whole context.
    Everything,
    /// No wildcards: the path itself.
    Exact(String),
    /// Literals then a final `**`: any path starting with the literals.
    Prefix(String),
    /// A leading `**` then literals: any path ending with them (`**/x` also
    /// matches `x`).
    Suffix(String),
    /// Anything else.
    Tokens(Vec<Tok>),
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    One,
    /// `[...]`: one non-`/` character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A `**` inside the pattern: nothing, or anything ending in `/`.
    DirStar,
    /// A final `**`: anything.
    Any,
}

impl Matcher {
    /// A matcher that excludes nothing.
    pub fn empty() -> Matcher {
        Matcher::default()
    }

    /// Compiles the text of an ignore file. Errors name the line.
    pub fn parse(text: &str) -> Result<Matcher> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                bail!("line {}: illegal exclusion pattern: \"!\"", index + 1);
            }
            let cleaned = clean(pattern);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => cleaned,
            };
            let kind = compile(&cleaned).map_err(|e| anyhow!("line {}: bad pattern {line:?}: {e}", index + 1))?;
            patterns.push(Pattern { exception, kind });
        }
        Ok(Matcher { patterns })
    }

    /// The ignore file for a build: `<containerfile path>.containerignore` or `.dockerignore` next to the
    /// Containerfile if `containerfile` is given and such a file exists, else `<context>/.containerignore`, else
    /// `<context>/.dockerignore`, else empty. Errors name the file.
    ///
    /// "Next to the Containerfile" means Docker's per-Dockerfile ignore file:
    /// `build/Containerfile.containerignore`, then
    /// `build/Containerfile.dockerignore`, for `build/Containerfile`.
    pub fn load(context: &Path, containerfile: Option<&Path>) -> Result<Matcher> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(file) = containerfile {
            for suffix in [".containerignore", ".dockerignore"] {
                let mut name = file.as_os_str().to_owned();
                name.push(suffix);
                candidates.push(PathBuf::from(name));
            }
        }
        candidates.push(context.join(".containerignore"));
        candidates.push(context.join(".dockerignore"));
        for path in candidates {
            match std::fs::read_to_string(&path) {
                Ok(text) => return Matcher::parse(&text).with_context(|| format!("parse {}", path.display())),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
            }
        }
        Ok(Matcher::empty())
    }

    /// `rel`: path relative to the context root, '/'-separated, no leading '/', no `.`/`..` components.
    /// True when excluded: the last pattern that matches the path OR ONE OF ITS PARENT DIRECTORIES decides
    /// (an `!exception` re-includes).
    ///
    /// The context root itself (`""` or `"."`) is never excluded.
    pub fn is_excluded(&self, rel: &str) -> bool {
        if rel.is_empty() || rel == "." {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that would change the answer needs a look; the
            // outcome is that of the last matching pattern either way.
            if pattern.exception != excluded {
                continue;
            }
            if pattern.matches_self_or_parent(rel) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// For a directory that is_excluded: could a `!` pattern re-include something below it (so a walker
    /// must still descend)? False when there are no exceptions.
    ///
    /// Only exceptions after the last pattern matching the directory count
    /// (earlier ones are overridden for everything below it too). The answer
    /// may be a false "yes" for wildcard patterns, never a false "no".
    pub fn may_reinclude_below(&self, rel_dir: &str) -> bool {
        if !self.has_exceptions() {
            return false;
        }
        let after = self
            .patterns
            .iter()
            .rposition(|p| p.matches_self_or_parent(rel_dir))
            .map_or(0, |i| i + 1);
        let below = format!("{rel_dir}/");
        self.patterns[after..]
            .iter()
            .any(|p| p.exception && p.could_match_below(&below))
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Some pattern is a `!` exception.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

impl Pattern {
    fn matches_self_or_parent(&self, rel: &str) -> bool {
        self.matches(rel) || rel.match_indices('/').any(|(i, _)| i > 0 && self.matches(&rel[..i]))
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Everything => true,
            Kind::Exact(s) => path == s,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s),
            Kind::Tokens(toks) => {
                let chars: Vec<char> = path.chars().collect();
                tokens_match(toks, &chars, false)
            }
        }
    }

    /// Could this pattern match some path that starts with `below` (a
    /// directory with a trailing '/')?
    fn could_match_below(&self, below: &str) -> bool {
        match &self.kind {
            Kind::Everything | Kind::Suffix(_) => true,
            Kind::Exact(s) => s.starts_with(below),
            Kind::Prefix(p) => below.starts_with(p.as_str()) || p.starts_with(below),
            Kind::Tokens(toks) => {
                let chars: Vec<char> = below.chars().collect();
                tokens_match(toks, &chars, true)
            }
        }
    }
}

/// Whether `toks` match all of `s`; with `partial`, whether they can match
/// some string that begins with `s`.
fn tokens_match(toks: &[Tok], s: &[char], partial: bool) -> bool {
    let n = s.len();
    // m[i]: toks[t..] match s[i..] (for the current t, built from t+1).
    let mut m: Vec<bool> = (0..=n).map(|i| i == n).collect();
    for tok in toks.iter().rev() {
        let next = m;
        m = vec![false; n + 1];
        // Inside a DirStar: `.*/` then the rest can match from i.
        let mut inside = partial;
        for i in (0..=n).rev() {
            if i == n {
                m[i] = partial || (matches!(tok, Tok::Star | Tok::Any | Tok::DirStar) && next[i]);
                continue;
            }
            let c = s[i];
            m[i] = match tok {
                Tok::Lit(l) => c == *l && next[i + 1],
                Tok::One => c != '/' && next[i + 1],
                Tok::Class { negated, ranges } => {
                    c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated && next[i + 1]
                }
                Tok::Star => next[i] || (c != '/' && m[i + 1]),
                Tok::Any => next[i] || m[i + 1],
                Tok::DirStar => {
                    inside = (c == '/' && next[i + 1]) || inside;
                    next[i] || inside
                }
            };
        }
    }
    m[0]
}

/// Classifies and compiles a cleaned pattern as patternmatcher does.
fn compile(pattern: &str) -> Result<Kind, String> {
    if pattern == "." {
        return Ok(Kind::Everything);
    }
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Tokens,
    }
    let mut detected = Detected::Exact;
    let mut toks = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let mut first = true;
    while pos < chars.len() {
        let c = chars[pos];
        pos += 1;
        match c {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::Any);
                        detected = Detected::Tokens;
                    }
                } else {
                    toks.push(Tok::DirStar);
                    detected = Detected::Tokens;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Tokens;
            }
            '?' => {
                toks.push(Tok::One);
                detected = Detected::Tokens;
            }
            '\\' => match chars.get(pos) {
                Some(&n) => {
                    pos += 1;
                    toks.push(Tok::Lit(n));
                    detected = Detected::Tokens;
                }
                None => return Err("trailing backslash".to_string()),
            },
            '[' => {
                let (tok, next) = class(&chars, pos)?;
                toks.push(tok);
                pos = next;
                detected = Detected::Tokens;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact(pattern.to_string()),
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Tokens => Kind::Tokens(toks),
    })
}

/// A `[...]` class whose `[` was at `start - 1`: the token and the index
/// after the `]`. Go's filepath.Match rules: at least one range, `-` and `]`
/// need escaping inside, ranges `a-z`.
fn class(chars: &[char], start: usize) -> Result<(Tok, usize), String> {
    let mut pos = start;
    let negated = matches!(chars.get(pos), Some('^' | '!'));
    if negated {
        pos += 1;
    }
    let mut ranges = Vec::new();
    let read = |pos: &mut usize| -> Result<char, String> {
        match chars.get(*pos) {
            None => Err("unterminated [".to_string()),
            Some('-' | ']') => Err("'-' or ']' must be escaped in a class".to_string()),
            Some('\\') => {
                let c = *chars.get(*pos + 1).ok_or("unterminated [")?;
                *pos += 2;
                Ok(c)
            }
            Some(&c) => {
                *pos += 1;
                Ok(c)
            }
        }
    };
    loop {
        if chars.get(pos) == Some(&']') && !ranges.is_empty() {
            return Ok((Tok::Class { negated, ranges }, pos + 1));
        }
        let lo = read(&mut pos)?;
        let hi = if chars.get(pos) == Some(&'-') {
            pos += 1;
            read(&mut pos)?
        } else {
            lo
        };
        if hi < lo {
            return Err(format!("bad range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

/// Go's path.Clean for '/'-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    /// Single-pattern cases from moby/patternmatcher's tests (pattern, path,
    /// matches), checked through is_excluded (so a matching parent counts).
    #[test]
    fn patternmatcher_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "dir/file", true),
            ("**/", "file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            ("a[!b-d]e", "aze", true),
            ("a[!b-d]e", "ace", false),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("*x", "xxx", true),
        ];
        for (pattern, path, want) in cases {
            let matcher = Matcher::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e:#}"));
            assert_eq!(matcher.is_excluded(path), *want, "pattern {pattern:?} path {path:?}");
        }
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "[a-b-c]", "[", "[^", "[^bc", "a[", "\\", "[z-a]",
        ] {
            let e = Matcher::parse(&format!("ok\n{bad}\n")).unwrap_err();
            assert!(format!("{e:#}").starts_with("line 2: bad pattern"), "{bad}: {e:#}");
        }
        let e = Matcher::parse("!\n").unwrap_err();
        assert!(format!("{e:#}").contains("illegal exclusion pattern"), "{e:#}");
        let e = Matcher::parse("a\n  !  \n").unwrap_err();
        assert!(format!("{e:#}").starts_with("line 2:"), "{e:#}");
    }

    #[test]
    fn top_level_glob_is_not_recursive() {
        let x = m("*.md\n");
        assert!(x.is_excluded("README.md"));
        assert!(!x.is_excluded("docs/x.md"));
        let x = m("**/*.md\n");
        assert!(x.is_excluded("README.md"));
        assert!(x.is_excluded("docs/x.md"));
        assert!(x.is_excluded("a/b/c/x.md"));
        assert!(!x.is_excluded("a/b/c/x.mdx"));
    }

    #[test]
    fn exception_after_exclusion() {
        let x = m("*.md\n!README.md\n");
        assert!(x.is_excluded("CHANGES.md"));
        assert!(!x.is_excluded("README.md"));
        assert!(!x.is_excluded("main.rs"));
        // The last matching pattern wins: an exception first is overridden.
        let x = m("!README.md\n*.md\n");
        assert!(x.is_excluded("README.md"));
    }

    #[test]
    fn directory_excludes_contents() {
        let x = m("target\nnode_modules/\n");
        assert!(x.is_excluded("target"));
        assert!(x.is_excluded("target/debug/app"));
        assert!(x.is_excluded("node_modules/x/index.js"));
        assert!(!x.is_excluded("src/target"));
        assert!(!x.is_excluded("targets"));
        let x = m("docs/*\n");
        assert!(x.is_excluded("docs/a"));
        assert!(x.is_excluded("docs/a/b"));
        assert!(!x.is_excluded("docs"));
    }

    #[test]
    fn exception_below_excluded_dir() {
        let x = m("dir\n!dir/keep\n");
        assert!(x.is_excluded("dir"));
        assert!(x.is_excluded("dir/other"));
        assert!(!x.is_excluded("dir/keep"));
        assert!(!x.is_excluded("dir/keep/deep/file"));
        assert!(x.may_reinclude_below("dir"));
        assert!(!x.may_reinclude_below("dir/other"));
        assert!(!x.may_reinclude_below("elsewhere"));
        // patternmatcher's own: everything, then one directory back.
        let x = m("**\n!util/docker/web\n");
        assert!(!x.is_excluded("util/docker/web/foo"));
        assert!(x.is_excluded("util/docker/other"));
        assert!(x.may_reinclude_below("util"));
        assert!(x.may_reinclude_below("util/docker"));
        assert!(!x.may_reinclude_below("lib"));
        let x = m("**\n!util/docker/web\nutil/docker/web/foo\n");
        assert!(x.is_excluded("util/docker/web/foo"));
        assert!(!x.is_excluded("util/docker/web/bar"));
    }

    #[test]
    fn may_reinclude_below_wildcards_and_order() {
        assert!(m("*\n!**/*.rs\n").may_reinclude_below("src"));
        assert!(m("*\n!src/*.rs\n").may_reinclude_below("src"));
        assert!(!m("*\n!src/*.rs\n").may_reinclude_below("lib"));
        assert!(m("*\n!s*/keep\n").may_reinclude_below("src"));
        assert!(m("*\n!src/**\n").may_reinclude_below("src"));
        assert!(m("*\n!src/sub**\n").may_reinclude_below("src"));
        assert!(!m("*\n!src/sub**\n").may_reinclude_below("lib"));
        // `!src**` matches `src` itself: the directory is not excluded at all.
        assert!(!m("*\n!src**\n").is_excluded("src"));
        assert!(m("*\n!**/keep\n").may_reinclude_below("src"));
        assert!(!m("*\n!.\n").is_excluded("src"));
        assert!(m("*\n!a/b/c\n").may_reinclude_below("a/b"));
        // An exception before the exclusion of the directory cannot act below it.
        assert!(!m("!dir/keep\ndir\n").may_reinclude_below("dir"));
        // No exceptions at all.
        assert!(!m("dir\n").may_reinclude_below("dir"));
        assert!(!Matcher::empty().may_reinclude_below("dir"));
    }

    #[test]
    fn cleaning_and_comments() {
        let x = m("\u{feff}# comment\n\n   \n  /abs/path  \n./rel\na//b/../c\n#not/a/pattern\n  !  abs/path/keep\n");
        assert!(x.is_excluded("abs/path/x"));
        assert!(!x.is_excluded("abs/path/keep"));
        assert!(x.is_excluded("rel"));
        assert!(x.is_excluded("a/c"));
        assert!(!x.is_excluded("a/b"));
        assert!(!x.is_excluded("#not/a/pattern"));
        assert_eq!(clean("a//b/../c"), "a/c");
        assert_eq!(clean("./a/./b/"), "a/b");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("/"), "/");
        // A comment only when `#` is the first character, as in Docker.
        assert!(m(" #x\n").is_excluded("#x"));
    }

    #[test]
    fn dot_matches_everything_but_the_root() {
        let x = m(".\n!keep\n");
        assert!(x.is_excluded("a"));
        assert!(x.is_excluded("a/b"));
        assert!(!x.is_excluded("keep"));
        assert!(!x.is_excluded(""));
        assert!(!m("**\n").is_excluded("."));
    }

    #[test]
    fn escapes_and_classes() {
        let x = m("\\!important\n\\#hash\nfile[0-9].txt\n");
        assert!(x.is_excluded("!important"));
        assert!(x.is_excluded("#hash"));
        assert!(x.is_excluded("file7.txt"));
        assert!(!x.is_excluded("fileX.txt"));
        // A class never matches the separator.
        assert!(!m("a[^x]b\n").is_excluded("a/b"));
    }

    #[test]
    fn double_star_in_the_middle() {
        let x = m("a/**/b\n");
        assert!(x.is_excluded("a/b"));
        assert!(x.is_excluded("a/x/b"));
        assert!(x.is_excluded("a/x/y/b/c"));
        assert!(!x.is_excluded("a/xb"));
        assert!(!x.is_excluded("b"));
    }

    #[test]
    fn empty_matcher() {
        let x = Matcher::empty();
        assert!(x.is_empty());
        assert!(!x.is_excluded("anything"));
        assert!(m("# only comments\n\n").is_empty());
        assert!(!m("a\n").is_empty());
        assert!(!m("a\n").has_exceptions());
        assert!(m("a\n!b\n").has_exceptions());
    }

    #[test]
    fn load_prefers_containerfile_specific_then_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let files = dir.path().join("files");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::create_dir_all(&files).unwrap();
        let cf = files.join("Containerfile");
        std::fs::write(&cf, "FROM a\n").unwrap();

        // Nothing anywhere: empty.
        assert!(Matcher::load(&ctx, Some(&cf)).unwrap().is_empty());
        assert!(Matcher::load(&ctx, None).unwrap().is_empty());

        std::fs::write(ctx.join(".dockerignore"), "from-dockerignore\n").unwrap();
        let x = Matcher::load(&ctx, Some(&cf)).unwrap();
        assert!(x.is_excluded("from-dockerignore"));

        std::fs::write(ctx.join(".containerignore"), "from-containerignore\n").unwrap();
        let x = Matcher::load(&ctx, None).unwrap();
        assert!(x.is_excluded("from-containerignore"));
        assert!(!x.is_excluded("from-dockerignore"));

        std::fs::write(files.join("Containerfile.dockerignore"), "cf-dockerignore\n").unwrap();
        let x = Matcher::load(&ctx, Some(&cf)).unwrap();
        assert!(x.is_excluded("cf-dockerignore"));
        assert!(!x.is_excluded("from-containerignore"));

        std::fs::write(files.join("Containerfile.containerignore"), "cf-containerignore\n").unwrap();
        let x = Matcher::load(&ctx, Some(&cf)).unwrap();
        assert!(x.is_excluded("cf-containerignore"));
        assert!(!x.is_excluded("cf-dockerignore"));

        // Without a Containerfile path the specific files are not looked at.
        let x = Matcher::load(&ctx, None).unwrap();
        assert!(x.is_excluded("from-containerignore"));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".containerignore"), "ok\n[bad\n").unwrap();
        let e = format!("{:#}", Matcher::load(dir.path(), None).unwrap_err());
        let want = format!(
            "parse {}: line 2: bad pattern",
            dir.path().join(".containerignore").display()
        );
        assert!(e.starts_with(&want), "{e}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".dockerignore")).unwrap();
        let e = format!("{:#}", Matcher::load(dir.path(), None).unwrap_err());
        assert!(
            e.starts_with(&format!("read {}", dir.path().join(".dockerignore").display())),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), b"ok\n\xff\xfe\n").unwrap();
        let e = format!("{:#}", Matcher::load(dir.path(), None).unwrap_err());
        assert!(e.contains(".dockerignore"), "{e}");
    }
}

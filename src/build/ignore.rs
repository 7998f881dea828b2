//! `.containerignore` / `.dockerignore` rules (stub: the parser branch
//! replaces this file; nothing is excluded here).

/// A compiled set of ignore rules.
pub struct Matcher;

impl Matcher {
    /// No rules: nothing is excluded.
    pub fn empty() -> Matcher {
        Matcher
    }

    /// Parses an ignore file's text (stub: accepts anything, excludes nothing).
    pub fn parse(_text: &str) -> anyhow::Result<Matcher> {
        Ok(Matcher)
    }

    /// Whether `rel` ('/'-separated, relative to the context root) is excluded.
    pub fn is_excluded(&self, _rel: &str) -> bool {
        false
    }

    /// Whether the excluded directory `rel_dir` may hold re-included paths.
    pub fn may_reinclude_below(&self, _rel_dir: &str) -> bool {
        false
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        true
    }
}

//! A small regular-expression matcher for `--filter name=` (podman matches
//! names with Go's regexp): literals, `.`, `^`, `$`, `*`, `+`, `?`, classes
//! `[a-z]`/`[^...]`, escapes `\d \w \s \.`, and top-level `|`. Unanchored search.

use anyhow::{Result, bail};

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Char(char),
    Class { negated: bool, items: Vec<(char, char)> },
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rep {
    One,
    Star,
    Plus,
    Opt,
}

#[derive(Debug, Clone)]
pub struct Regex {
    alternatives: Vec<Vec<(Atom, Rep)>>,
}

fn class_escape(c: char) -> Option<Vec<(char, char)>> {
    match c {
        'd' => Some(vec![('0', '9')]),
        'w' => Some(vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]),
        's' => Some(vec![(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')]),
        _ => None,
    }
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex> {
        let mut alternatives = Vec::new();
        for alt in pattern.split('|') {
            let chars: Vec<char> = alt.chars().collect();
            let mut seq: Vec<(Atom, Rep)> = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                let atom = match chars[i] {
                    '.' => Atom::Any,
                    '^' => Atom::Start,
                    '$' => Atom::End,
                    '\\' => {
                        i += 1;
                        let Some(&c) = chars.get(i) else {
                            bail!("invalid regular expression {pattern:?}: trailing \\")
                        };
                        match class_escape(c) {
                            Some(items) => Atom::Class { negated: false, items },
                            None => Atom::Char(c),
                        }
                    }
                    '[' => {
                        i += 1;
                        let negated = chars.get(i) == Some(&'^');
                        if negated {
                            i += 1;
                        }
                        let mut items = Vec::new();
                        let mut first = true;
                        loop {
                            let Some(&c) = chars.get(i) else {
                                bail!("invalid regular expression {pattern:?}: missing ]")
                            };
                            if c == ']' && !first {
                                break;
                            }
                            first = false;
                            if c == '\\' {
                                i += 1;
                                let e = *chars.get(i).unwrap_or(&'\\');
                                match class_escape(e) {
                                    Some(v) => items.extend(v),
                                    None => items.push((e, e)),
                                }
                            } else if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&x| x != ']') {
                                items.push((c, chars[i + 2]));
                                i += 2;
                            } else {
                                items.push((c, c));
                            }
                            i += 1;
                        }
                        Atom::Class { negated, items }
                    }
                    '*' | '+' | '?' => bail!("invalid regular expression {pattern:?}: nothing to repeat"),
                    '(' | ')' => bail!("invalid regular expression {pattern:?}: groups are not supported"),
                    c => Atom::Char(c),
                };
                i += 1;
                let rep = match chars.get(i) {
                    Some('*') => Rep::Star,
                    Some('+') => Rep::Plus,
                    Some('?') => Rep::Opt,
                    _ => Rep::One,
                };
                if rep != Rep::One {
                    i += 1;
                }
                seq.push((atom, rep));
            }
            alternatives.push(seq);
        }
        Ok(Regex { alternatives })
    }

    /// True when the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        self.alternatives
            .iter()
            .any(|seq| (0..=chars.len()).any(|start| match_here(seq, &chars, start)))
    }
}

fn atom_matches(a: &Atom, c: char) -> bool {
    match a {
        Atom::Any => c != '\n',
        Atom::Char(x) => *x == c,
        Atom::Class { negated, items } => items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        Atom::Start | Atom::End => false,
    }
}

fn match_here(seq: &[(Atom, Rep)], s: &[char], pos: usize) -> bool {
    let Some(((atom, rep), rest)) = seq.split_first() else {
        return true;
    };
    match atom {
        Atom::Start => return pos == 0 && match_here(rest, s, pos),
        Atom::End => return pos == s.len() && match_here(rest, s, pos),
        _ => {}
    }
    let (min, max) = match rep {
        Rep::One => (1, 1),
        Rep::Opt => (0, 1),
        Rep::Star => (0, usize::MAX),
        Rep::Plus => (1, usize::MAX),
    };
    let mut n = 0;
    while n < max && pos + n < s.len() && atom_matches(atom, s[pos + n]) {
        n += 1;
    }
    if n < min {
        return false;
    }
    // Greedy, backing off one at a time.
    (min..=n).rev().any(|k| match_here(rest, s, pos + k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Regex::new(p).unwrap().is_match(s)
    }

    #[test]
    fn matches_like_go_regexp() {
        assert!(m("ex", "ex0"));
        assert!(m("^ex0$", "ex0"));
        assert!(!m("^ex0$", "ex03"));
        assert!(m("^web-[0-9]+$", "web-12"));
        assert!(!m("^web-[0-9]+$", "web-"));
        assert!(m("a.c", "xabcx"));
        assert!(m("colou?r", "color"));
        assert!(m("^a|^b", "bee"));
        assert!(m(r"\d\d", "a12"));
        assert!(m("[^a-z]", "abC"));
        assert!(!m("[^a-z]", "abc"));
        assert!(m("x*", ""));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(Regex::new("*a").is_err());
        assert!(Regex::new("[ab").is_err());
        assert!(Regex::new("(a)").is_err());
    }
}

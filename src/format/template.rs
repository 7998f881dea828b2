//! A Go `text/template` engine over `serde_json::Value` data: the language
//! podman's `--format` accepts, written from the Go documentation and behaviour.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming, comments,
//! field chains (`.A.B`, `$x.A`, `(pipeline).A`), `.`, `$`, variables (`:=`,
//! `=`), pipelines with `|`, parenthesised pipelines, string/raw/char/number/
//! bool/nil literals, `if`/`else if`/`else`, `with`/`else with`, `range` (arrays,
//! objects in sorted key order, integers) with `else`, `break`, `continue`, and
//! the functions listed in [`FUNCTIONS`]. `define`/`template`/`block` are not.
//!
//! Data follows Go's rules for `map[string]interface{}`: a missing key and a
//! JSON null print `<no value>`, a field of a missing value is missing too.
//!
//! Deliberate differences from Go, where our JSON stands in for podman's typed
//! structs: a field of a null is missing instead of a "nil pointer" error
//! (our data has null where podman's structs hold zero values); errors name
//! the value's type (`can't evaluate field X in type string`, as for a typed
//! struct field) rather than `interface {}`; integers and floats compare with
//! each other; `join` accepts any array. Complex numbers and
//! `define`/`template`/`block` are not supported.
//!
//! The two-character sequences `\t` and `\n` in the text between actions become
//! a tab and a newline, as podman does for CLI arguments. Inside actions they
//! are left alone, so `{{printf "%s\n" .X}}` keeps working (podman#13446).

use std::fmt;

use anyhow::{Result, anyhow};
use serde_json::{Number, Value};

use super::gofmt;

/// The template name used in error messages, as Go prints it.
const NAME: &str = "output";

/// Deepest nesting of parentheses or blocks accepted, so hostile input cannot
/// exhaust the stack of the recursive parser and evaluator.
const MAX_DEPTH: usize = 200;

/// The functions a template can call.
pub const FUNCTIONS: &[&str] = &[
    "and",
    "contains",
    "eq",
    "ge",
    "gt",
    "hasPrefix",
    "hasSuffix",
    "index",
    "join",
    "json",
    "le",
    "len",
    "lower",
    "lt",
    "ne",
    "not",
    "or",
    "pad",
    "print",
    "printf",
    "println",
    "replace",
    "slice",
    "split",
    "title",
    "trim",
    "truncate",
    "upper",
];

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

impl Template {
    /// Parses Go template source.
    pub fn parse(src: &str) -> Result<Template> {
        Template::parse_opts(src, false)
    }

    /// Parses with podman's `table` rewriting: spaces in the text between
    /// actions become tabs (column separators).
    pub(crate) fn parse_opts(src: &str, spaces_to_tabs: bool) -> Result<Template> {
        let toks = Lexer {
            src,
            pos: 0,
            spaces_to_tabs,
            toks: Vec::new(),
        }
        .run()
        .map_err(|e| e.into_error(src))?;
        let mut p = Parser {
            src,
            toks,
            i: 0,
            vars: vec!["$".into()],
            range_depth: 0,
            depth: 0,
        };
        let nodes = p.parse_top().map_err(|e| e.into_error(src))?;
        Ok(Template {
            src: src.to_string(),
            nodes,
        })
    }

    /// The source this template was parsed from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Whether the output of the source ends with a newline written in its text
    /// (a real one or the `\n` escape).
    pub(crate) fn ends_with_newline(&self) -> bool {
        self.src.ends_with('\n') || self.src.ends_with("\\n")
    }

    /// Whether a top-level `{{range .}}` walks the data itself, as podman
    /// detects to pass the whole list of rows instead of one row at a time.
    pub(crate) fn ranges_over_dot(&self) -> bool {
        self.nodes.iter().any(|n| match n {
            Node::Range(b) => {
                b.pipe.decl.is_empty()
                    && b.pipe.cmds.len() == 1
                    && b.pipe.cmds[0].args.len() == 1
                    && matches!(b.pipe.cmds[0].args[0].kind, ArgKind::Dot)
            }
            _ => false,
        })
    }

    /// Executes the template on `data`.
    pub fn render(&self, data: &Value) -> Result<String> {
        self.exec(Val::Ref(data), None)
    }

    /// Executes the template in header mode: every field chain evaluates to the
    /// column title `header(path)` returns, ranges run their body once.
    pub(crate) fn render_header(&self, header: &dyn Fn(&[String]) -> String) -> Result<String> {
        self.exec(Val::Own(Value::Object(Default::default())), Some(header))
    }

    fn exec<'a>(&'a self, root: Val<'a>, header: Option<HeaderFn<'a>>) -> Result<String> {
        let mut ex = Exec {
            vars: vec![("$".into(), root.clone())],
            out: String::new(),
            header,
        };
        ex.walk(&root, &self.nodes).map_err(|e| e.into_error(&self.src))?;
        Ok(ex.out)
    }
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Field(String),
    Dot,
    Variable(String),
    Ident(String),
    Keyword(Kw),
    Str(String),
    Char(u32),
    Number(String),
    Bool(bool),
    Nil,
    Assign,
    Declare,
    Pipe,
    LParen,
    RParen,
    Comma,
    /// Other printable ASCII, which no rule accepts: the parser reports it.
    Punct,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

impl Kw {
    fn name(self) -> &'static str {
        match self {
            Kw::Block => "block",
            Kw::Break => "break",
            Kw::Continue => "continue",
            Kw::Define => "define",
            Kw::Else => "else",
            Kw::End => "end",
            Kw::If => "if",
            Kw::Range => "range",
            Kw::Template => "template",
            Kw::With => "with",
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    item: Item,
    pos: usize,
    end: usize,
}

/// A parse failure at a byte offset of the source.
struct ParseErr {
    pos: usize,
    msg: String,
}

impl ParseErr {
    fn into_error(self, src: &str) -> anyhow::Error {
        let line = 1 + src[..self.pos.min(src.len())].matches('\n').count();
        anyhow!("template: {NAME}:{line}: {}", self.msg)
    }
}

fn perr<T>(pos: usize, msg: impl Into<String>) -> Result<T, ParseErr> {
    Err(ParseErr { pos, msg: msg.into() })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Go's `%#U` form of a rune: `U+007D '}'`.
fn rune_desc(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    spaces_to_tabs: bool,
    toks: Vec<Token>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn emit(&mut self, item: Item, pos: usize) {
        self.toks.push(Token {
            item,
            pos,
            end: self.pos,
        });
    }

    /// `}}`, or ` -}}` with a trim marker: Some(trim) with the delimiter length.
    fn at_right_delim(&self) -> Option<(bool, usize)> {
        let r = self.rest();
        let mut cs = r.chars();
        if let (Some(c), Some('-')) = (cs.next(), cs.next())
            && is_space(c)
            && r[c.len_utf8() + 1..].starts_with("}}")
        {
            return Some((true, c.len_utf8() + 3));
        }
        r.starts_with("}}").then_some((false, 2))
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with("}}"),
        }
    }

    /// The text between actions with podman's CLI escapes applied.
    fn cook_text(&self, raw: &str) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut cs = raw.chars().peekable();
        while let Some(c) = cs.next() {
            match c {
                '\\' if cs.peek() == Some(&'t') => {
                    cs.next();
                    out.push('\t');
                }
                '\\' if cs.peek() == Some(&'n') => {
                    cs.next();
                    out.push('\n');
                }
                ' ' if self.spaces_to_tabs => out.push('\t'),
                c => out.push(c),
            }
        }
        out
    }

    fn run(mut self) -> Result<Vec<Token>, ParseErr> {
        let mut trim_leading = false;
        loop {
            let start = self.pos;
            let open = self.rest().find("{{").map(|i| self.pos + i);
            let text_end = open.unwrap_or(self.src.len());
            let mut after = text_end + 2;
            let trim_trailing = open.is_some() && {
                let r = &self.src[after.min(self.src.len())..];
                let mut cs = r.chars();
                matches!((cs.next(), cs.next()), (Some('-'), Some(c)) if is_space(c))
            };
            let mut text = self.cook_text(&self.src[start..text_end]);
            if trim_leading {
                text = text.trim_start_matches(is_space).to_string();
            }
            if trim_trailing {
                text.truncate(text.trim_end_matches(is_space).len());
                after += 2;
            }
            self.pos = text_end;
            if !text.is_empty() {
                self.emit(Item::Text(text), start);
            }
            let Some(open) = open else {
                self.emit(Item::Eof, self.pos);
                return Ok(self.toks);
            };
            self.pos = after;
            if self.rest().starts_with("/*") {
                let Some(close) = self.rest()[2..].find("*/") else {
                    return perr(open, "unclosed comment");
                };
                self.pos += 2 + close + 2;
                let Some((trim, len)) = self.at_right_delim() else {
                    return perr(open, "comment ends before closing delimiter");
                };
                self.pos += len;
                trim_leading = trim;
                continue;
            }
            self.toks.push(Token {
                item: Item::LeftDelim,
                pos: open,
                end: after,
            });
            trim_leading = self.lex_action()?;
        }
    }

    /// Lexes the inside of one action; returns whether it ended with `-}}`.
    fn lex_action(&mut self) -> Result<bool, ParseErr> {
        let mut parens = 0usize;
        loop {
            if let Some((trim, len)) = self.at_right_delim() {
                if parens > 0 {
                    return perr(self.pos, "unclosed left paren");
                }
                let at = self.pos;
                self.pos += len;
                self.emit(Item::RightDelim, at);
                return Ok(trim);
            }
            let at = self.pos;
            let Some(c) = self.peek() else {
                return perr(at, "unclosed action");
            };
            match c {
                c if is_space(c) => {
                    while self.peek().is_some_and(is_space) {
                        self.pos += 1;
                    }
                    // A trim marker " -}}" keeps its space.
                    let back = self.pos - 1;
                    if self.src[back..].starts_with(|c: char| is_space(c)) && self.src[back + 1..].starts_with("-}}") {
                        self.pos = back;
                    }
                    if self.pos > at {
                        self.emit(Item::Space, at);
                    }
                }
                '=' => self.single(Item::Assign),
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return perr(at, "expected :=");
                    }
                    self.pos += 2;
                    self.emit(Item::Declare, at);
                }
                '|' => self.single(Item::Pipe),
                ',' => self.single(Item::Comma),
                '(' => {
                    parens += 1;
                    if parens > MAX_DEPTH {
                        return perr(at, "parentheses nested too deeply");
                    }
                    self.single(Item::LParen);
                }
                ')' => {
                    // An unmatched ')' is reported by the parser: `unexpected ")" in command`.
                    parens = parens.saturating_sub(1);
                    self.single(Item::RParen);
                }
                '"' => self.lex_quote()?,
                '`' => self.lex_raw()?,
                '\'' => self.lex_char()?,
                '$' => {
                    self.pos += 1;
                    let name = self.alnum_run();
                    self.check_terminator()?;
                    self.emit(Item::Variable(format!("${name}")), at);
                }
                '.' => {
                    if self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()) {
                        self.lex_number()?;
                    } else {
                        self.pos += 1;
                        let name = self.alnum_run();
                        self.check_terminator()?;
                        self.emit(if name.is_empty() { Item::Dot } else { Item::Field(name) }, at);
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number()?,
                c if is_alnum(c) => {
                    let word = self.alnum_run();
                    self.check_terminator()?;
                    let item = match word.as_str() {
                        "block" => Item::Keyword(Kw::Block),
                        "break" => Item::Keyword(Kw::Break),
                        "continue" => Item::Keyword(Kw::Continue),
                        "define" => Item::Keyword(Kw::Define),
                        "else" => Item::Keyword(Kw::Else),
                        "end" => Item::Keyword(Kw::End),
                        "if" => Item::Keyword(Kw::If),
                        "range" => Item::Keyword(Kw::Range),
                        "template" => Item::Keyword(Kw::Template),
                        "with" => Item::Keyword(Kw::With),
                        "true" => Item::Bool(true),
                        "false" => Item::Bool(false),
                        "nil" => Item::Nil,
                        _ => Item::Ident(word),
                    };
                    self.emit(item, at);
                }
                c if c.is_ascii_graphic() => self.single(Item::Punct),
                c => return perr(at, format!("unrecognized character in action: {}", rune_desc(c))),
            }
        }
    }

    fn single(&mut self, item: Item) {
        let at = self.pos;
        self.pos += 1;
        self.emit(item, at);
    }

    fn alnum_run(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| is_alnum(c)) {
            self.pos += c.len_utf8();
        }
        self.src[start..self.pos].to_string()
    }

    fn check_terminator(&self) -> Result<(), ParseErr> {
        if self.at_terminator() {
            return Ok(());
        }
        let c = self.peek().unwrap_or(' ');
        perr(self.pos, format!("bad character {}", rune_desc(c)))
    }

    fn lex_quote(&mut self) -> Result<(), ParseErr> {
        let at = self.pos;
        let mut cs = self.rest().char_indices().skip(1);
        loop {
            match cs.next() {
                Some((_, '\\')) => match cs.next() {
                    Some((_, c)) if c != '\n' => {}
                    _ => return perr(at, "unterminated quoted string"),
                },
                None | Some((_, '\n')) => return perr(at, "unterminated quoted string"),
                Some((i, '"')) => {
                    let raw = &self.rest()[1..i];
                    let s = unquote(raw, '"').ok_or(ParseErr {
                        pos: at,
                        msg: format!("invalid syntax: \"{raw}\""),
                    })?;
                    self.pos += i + 1;
                    self.emit(Item::Str(s), at);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn lex_raw(&mut self) -> Result<(), ParseErr> {
        let at = self.pos;
        let Some(close) = self.rest()[1..].find('`') else {
            return perr(at, "unterminated raw quoted string");
        };
        let s = self.rest()[1..1 + close].replace('\r', "");
        self.pos += close + 2;
        self.emit(Item::Str(s), at);
        Ok(())
    }

    fn lex_char(&mut self) -> Result<(), ParseErr> {
        let at = self.pos;
        let mut cs = self.rest().char_indices().skip(1);
        loop {
            match cs.next() {
                Some((_, '\\')) => match cs.next() {
                    Some((_, c)) if c != '\n' => {}
                    _ => return perr(at, "unterminated character constant"),
                },
                None | Some((_, '\n')) => return perr(at, "unterminated character constant"),
                Some((i, '\'')) => {
                    let raw = &self.rest()[1..i];
                    let bad = || ParseErr {
                        pos: at,
                        msg: format!("malformed character constant: '{raw}'"),
                    };
                    let s = unquote(raw, '\'').ok_or_else(bad)?;
                    let mut chars = s.chars();
                    let (Some(c), None) = (chars.next(), chars.next()) else {
                        return Err(bad());
                    };
                    self.pos += i + 1;
                    self.emit(Item::Char(c as u32), at);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    /// Go's scanNumber: sign, base prefix, digits, fraction, exponent.
    fn lex_number(&mut self) -> Result<(), ParseErr> {
        let at = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        let accept = |i: &mut usize, set: &str| -> bool {
            if *i < b.len() && set.as_bytes().contains(&b[*i]) {
                *i += 1;
                true
            } else {
                false
            }
        };
        let run = |i: &mut usize, set: &str| {
            while *i < b.len() && set.as_bytes().contains(&b[*i]) {
                *i += 1;
            }
        };
        accept(&mut i, "+-");
        let mut digits = "0123456789_";
        if accept(&mut i, "0") {
            if accept(&mut i, "xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if accept(&mut i, "oO") {
                digits = "01234567_";
            } else if accept(&mut i, "bB") {
                digits = "01_";
            }
        }
        run(&mut i, digits);
        if accept(&mut i, ".") {
            run(&mut i, digits);
        }
        if digits.len() == 11 && accept(&mut i, "eE") {
            accept(&mut i, "+-");
            run(&mut i, "0123456789_");
        }
        if digits.len() == 23 && accept(&mut i, "pP") {
            accept(&mut i, "+-");
            run(&mut i, "0123456789_");
        }
        accept(&mut i, "i");
        self.pos = i;
        if self.peek().is_some_and(is_alnum) {
            let end = self.pos + self.peek().map_or(0, char::len_utf8);
            return perr(at, format!("bad number syntax: {:?}", &self.src[at..end]));
        }
        let text = self.src[at..i].to_string();
        self.emit(Item::Number(text), at);
        Ok(())
    }
}

/// Go's strconv unquoting of the body of a `"` string or `'` char literal.
fn unquote(raw: &str, quote: char) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut cs = raw.chars();
    let hex = |cs: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v * 16 + cs.next()?.to_digit(16)?;
        }
        Some(v)
    };
    while let Some(c) = cs.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        let e = cs.next()?;
        let push = |bytes: &mut Vec<u8>, c: char| bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        match e {
            'a' => bytes.push(7),
            'b' => bytes.push(8),
            'f' => bytes.push(12),
            'n' => bytes.push(b'\n'),
            'r' => bytes.push(b'\r'),
            't' => bytes.push(b'\t'),
            'v' => bytes.push(11),
            '\\' => bytes.push(b'\\'),
            c if c == quote => push(&mut bytes, c),
            'x' => bytes.push(u8::try_from(hex(&mut cs, 2)?).ok()?),
            'u' => push(&mut bytes, char::from_u32(hex(&mut cs, 4)?)?),
            'U' => push(&mut bytes, char::from_u32(hex(&mut cs, 8)?)?),
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + cs.next()?.to_digit(8)?;
                }
                bytes.push(u8::try_from(v).ok()?);
            }
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

// ---------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Branch {
    pipe: Pipe,
    list: Vec<Node>,
    else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    is_assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Arg {
    pos: usize,
    kind: ArgKind,
}

#[derive(Debug, Clone)]
enum ArgKind {
    Dot,
    Nil,
    Bool(bool),
    Number(Number, String),
    Str(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Chain(Box<Arg>, Vec<String>),
    Pipe(Box<Pipe>),
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (j, a) in self.args.iter().enumerate() {
            if j > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(_, text) => f.write_str(text),
            ArgKind::Str(s) => f.write_str(&gofmt::quote(s)),
            ArgKind::Field(path) => write!(f, ".{}", path.join(".")),
            ArgKind::Var(name, path) => {
                f.write_str(name)?;
                path.iter().try_for_each(|p| write!(f, ".{p}"))
            }
            ArgKind::Ident(name) => f.write_str(name),
            ArgKind::Chain(base, path) => {
                write!(f, "{base}")?;
                path.iter().try_for_each(|p| write!(f, ".{p}"))
            }
            ArgKind::Pipe(p) => write!(f, "({p})"),
        }
    }
}

// ---------------------------------------------------------------------------
// Parser

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
}

/// What one `textOrAction` step produced.
enum Step {
    Node(Node),
    End(usize),
    Else(usize),
}

impl Parser<'_> {
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn skip_space(&mut self) {
        while self.peek().item == Item::Space {
            self.i += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn peek_non_space(&mut self) -> &Token {
        self.skip_space();
        self.peek()
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    /// Go's item description in "unexpected X in Y".
    fn describe(&self, t: &Token) -> String {
        match &t.item {
            Item::Eof => "EOF".into(),
            Item::Keyword(k) => format!("<{}>", k.name()),
            Item::Text(s) => short_quote(s),
            _ => short_quote(&self.src[t.pos..t.end.max(t.pos)]),
        }
    }

    fn unexpected<T>(&self, t: &Token, context: &str) -> Result<T, ParseErr> {
        perr(t.pos, format!("unexpected {} in {context}", self.describe(t)))
    }

    fn parse_top(&mut self) -> Result<Vec<Node>, ParseErr> {
        let mut nodes = Vec::new();
        while self.peek().item != Item::Eof {
            match self.text_or_action()? {
                Step::Node(n) => nodes.push(n),
                Step::End(pos) => return perr(pos, "unexpected {{end}}"),
                Step::Else(pos) => return perr(pos, "unexpected {{else}}"),
            }
        }
        Ok(nodes)
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, Step), ParseErr> {
        let mut nodes = Vec::new();
        loop {
            if self.peek_non_space().item == Item::Eof {
                let pos = self.peek().pos;
                return perr(pos, "unexpected EOF");
            }
            match self.text_or_action()? {
                Step::Node(n) => nodes.push(n),
                end => return Ok((nodes, end)),
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Step, ParseErr> {
        let t = self.next_non_space();
        match t.item {
            Item::Text(s) => Ok(Step::Node(Node::Text(s))),
            Item::LeftDelim => self.action(),
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> Result<Step, ParseErr> {
        let t = self.next_non_space();
        let node = match t.item {
            Item::Keyword(k @ (Kw::Block | Kw::Define | Kw::Template)) => {
                return perr(t.pos, format!("{{{{{}}}}} is not supported", k.name()));
            }
            Item::Keyword(k @ (Kw::Break | Kw::Continue)) => {
                let close = self.next_non_space();
                if close.item != Item::RightDelim {
                    return self.unexpected(&close, &format!("{{{{{}}}}}", k.name()));
                }
                if self.range_depth == 0 {
                    return perr(t.pos, format!("{{{{{}}}}} outside {{{{range}}}}", k.name()));
                }
                if k == Kw::Break { Node::Break } else { Node::Continue }
            }
            Item::Keyword(Kw::Else) => {
                // "{{else if" / "{{else with": leave the keyword for the caller.
                if !matches!(self.peek_non_space().item, Item::Keyword(Kw::If | Kw::With)) {
                    self.expect_close("else")?;
                }
                return Ok(Step::Else(t.pos));
            }
            Item::Keyword(Kw::End) => {
                self.expect_close("end")?;
                return Ok(Step::End(t.pos));
            }
            Item::Keyword(Kw::If) => Node::If(self.control("if")?),
            Item::Keyword(Kw::With) => Node::With(self.control("with")?),
            Item::Keyword(Kw::Range) => Node::Range(self.control("range")?),
            _ => {
                self.backup();
                Node::Action(self.pipeline("command", false)?)
            }
        };
        Ok(Step::Node(node))
    }

    fn expect_close(&mut self, context: &str) -> Result<(), ParseErr> {
        let t = self.next_non_space();
        if t.item != Item::RightDelim {
            return self.unexpected(&t, context);
        }
        Ok(())
    }

    fn control(&mut self, context: &'static str) -> Result<Branch, ParseErr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let pos = self.peek().pos;
            return perr(pos, "blocks nested too deeply");
        }
        let vars_mark = self.vars.len();
        let pipe = self.pipeline(context, false)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Step::Else(_) => {
                let chained = match self.peek().item {
                    Item::Keyword(Kw::If) if context == "if" => Some(Kw::If),
                    Item::Keyword(Kw::With) if context == "with" => Some(Kw::With),
                    _ => None,
                };
                match chained {
                    Some(k) => {
                        self.next();
                        let b = self.control(k.name())?;
                        Some(vec![if k == Kw::If { Node::If(b) } else { Node::With(b) }])
                    }
                    None => {
                        let (l, end) = self.item_list()?;
                        if let Step::Else(pos) = end {
                            return perr(pos, "expected end; found {{else}}");
                        }
                        Some(l)
                    }
                }
            }
            _ => None,
        };
        self.vars.truncate(vars_mark);
        self.depth -= 1;
        Ok(Branch { pipe, list, else_list })
    }

    fn pipeline(&mut self, context: &str, in_parens: bool) -> Result<Pipe, ParseErr> {
        let mut pipe = Pipe {
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and `$i, $e :=` in range.
        loop {
            let save = self.i;
            let t = self.next_non_space();
            let Item::Variable(name) = t.item else {
                self.i = save;
                break;
            };
            let n = self.next_non_space();
            match n.item {
                Item::Declare | Item::Assign => {
                    pipe.is_assign = n.item == Item::Assign;
                    if pipe.is_assign && !self.vars.contains(&name) {
                        return perr(t.pos, format!("undefined variable {name:?}"));
                    }
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Item::Comma => {
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        if matches!(
                            self.peek_non_space().item,
                            Item::Variable(_) | Item::RightDelim | Item::RParen
                        ) {
                            continue;
                        }
                        return perr(n.pos, "range can only initialize variables");
                    }
                    return perr(n.pos, format!("too many declarations in {context}"));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        let mut after_pipe = false;
        loop {
            let t = self.next_non_space();
            match t.item {
                Item::RightDelim | Item::RParen if (t.item == Item::RParen) == in_parens => {
                    if pipe.cmds.is_empty() {
                        return perr(t.pos, format!("missing value for {context}"));
                    }
                    if after_pipe {
                        return perr(t.pos, format!("missing command after | in {context}"));
                    }
                    for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                        if matches!(
                            c.args[0].kind,
                            ArgKind::Bool(_) | ArgKind::Dot | ArgKind::Nil | ArgKind::Number(..) | ArgKind::Str(_)
                        ) {
                            return perr(
                                c.args[0].pos,
                                format!("non executable command in pipeline stage {}", i + 1),
                            );
                        }
                    }
                    return Ok(pipe);
                }
                Item::Bool(_)
                | Item::Char(_)
                | Item::Dot
                | Item::Field(_)
                | Item::Ident(_)
                | Item::Number(_)
                | Item::Nil
                | Item::Str(_)
                | Item::Variable(_)
                | Item::LParen => {
                    self.backup();
                    let (cmd, piped) = self.command()?;
                    pipe.cmds.push(cmd);
                    after_pipe = piped;
                }
                _ => return self.unexpected(&t, context),
            }
        }
    }

    /// One command; returns whether it ended at a `|`.
    fn command(&mut self) -> Result<(Cmd, bool), ParseErr> {
        let mut args = Vec::new();
        let start = self.peek_non_space().pos;
        let piped = loop {
            self.skip_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.next();
            match t.item {
                Item::Space => continue,
                Item::RightDelim | Item::RParen => {
                    self.backup();
                    break false;
                }
                Item::Pipe => break true,
                _ => return self.unexpected(&t, "operand"),
            }
        };
        if args.is_empty() {
            return perr(start, "empty command");
        }
        Ok((Cmd { args }, piped))
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseErr> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek().item, Item::Field(_)) {
            return Ok(Some(term));
        }
        let mut fields = Vec::new();
        // Go positions a chain at its first chained field, and reports errors there.
        let chain_pos = self.peek().pos;
        while let Item::Field(f) = &self.peek().item {
            fields.push(f.clone());
            self.i += 1;
        }
        let pos = if matches!(term.kind, ArgKind::Field(_)) {
            chain_pos
        } else {
            term.pos
        };
        let kind = match term.kind {
            ArgKind::Field(mut p) => {
                p.extend(fields);
                ArgKind::Field(p)
            }
            ArgKind::Var(name, mut p) => {
                p.extend(fields);
                ArgKind::Var(name, p)
            }
            ArgKind::Bool(_) | ArgKind::Str(_) | ArgKind::Number(..) | ArgKind::Nil | ArgKind::Dot => {
                return perr(pos, format!("unexpected . after term {:?}", term.to_string()));
            }
            other => ArgKind::Chain(Box::new(Arg { pos, kind: other }), fields),
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseErr> {
        let t = self.next_non_space();
        let kind = match t.item {
            Item::Ident(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return perr(t.pos, format!("function {name:?} not defined"));
                }
                ArgKind::Ident(name)
            }
            Item::Dot => ArgKind::Dot,
            Item::Nil => ArgKind::Nil,
            Item::Variable(name) => {
                if !self.vars.contains(&name) {
                    return perr(t.pos, format!("undefined variable {name:?}"));
                }
                ArgKind::Var(name, Vec::new())
            }
            Item::Field(f) => ArgKind::Field(vec![f]),
            Item::Bool(b) => ArgKind::Bool(b),
            Item::Char(c) => ArgKind::Number(Number::from(c), self.src[t.pos..t.end].to_string()),
            Item::Number(text) => {
                let n = parse_number(&text).map_err(|msg| ParseErr { pos: t.pos, msg })?;
                ArgKind::Number(n, text)
            }
            Item::Str(s) => ArgKind::Str(s),
            Item::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return perr(t.pos, "parentheses nested too deeply");
                }
                let p = self.pipeline("parenthesized pipeline", true)?;
                self.depth -= 1;
                ArgKind::Pipe(Box::new(p))
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg { pos: t.pos, kind }))
    }
}

/// `"abc"`, or the first ten characters quoted and `...`, as Go describes items.
fn short_quote(s: &str) -> String {
    if s.chars().count() > 10 {
        format!("{}...", gofmt::quote(&s.chars().take(10).collect::<String>()))
    } else {
        gofmt::quote(s)
    }
}

/// A Go number literal: ints in any base (underscores allowed), or floats.
fn parse_number(text: &str) -> Result<Number, String> {
    let bad = || format!("illegal number syntax: {text:?}");
    if text.ends_with('i') {
        return Err(format!("complex number {text:?} is not supported"));
    }
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = body.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some((16, &body[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &body[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &body[2..]))
    } else if !lower.contains(['.', 'e']) {
        Some((10, body))
    } else {
        None
    };
    match radix {
        Some((r, digits)) => {
            let u = u64::from_str_radix(digits, r).map_err(|_| bad())?;
            if neg {
                let i = i64::try_from(u).ok().and_then(i64::checked_neg).ok_or_else(bad)?;
                Ok(Number::from(i))
            } else {
                Ok(Number::from(u))
            }
        }
        None => {
            let f: f64 = body.parse().map_err(|_| bad())?;
            Number::from_f64(if neg { -f } else { f }).ok_or_else(bad)
        }
    }
}

// ---------------------------------------------------------------------------
// Execution

/// A value during execution: missing (Go's invalid value), borrowed from the
/// data, or computed.
#[derive(Debug, Clone)]
enum Val<'a> {
    Missing,
    Ref(&'a Value),
    Own(Value),
}

impl<'a> Val<'a> {
    fn get(&self) -> Option<&Value> {
        match self {
            Val::Missing => None,
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
        }
    }

    /// The value as fmt sees it: missing and null are nil.
    fn arg(&self) -> gofmt::Arg<'_> {
        self.get().filter(|v| !v.is_null())
    }

    /// A child of this value, borrowed when this one is.
    fn child(&self, f: impl Fn(&Value) -> Option<&Value>) -> Val<'a> {
        match self {
            Val::Missing => Val::Missing,
            Val::Ref(v) => f(v).map_or(Val::Missing, Val::Ref),
            Val::Own(v) => f(v).map_or(Val::Missing, |c| Val::Own(c.clone())),
        }
    }

    fn str(s: impl Into<String>) -> Val<'a> {
        Val::Own(Value::String(s.into()))
    }

    fn int(i: i64) -> Val<'a> {
        Val::Own(Value::Number(Number::from(i)))
    }

    fn bool(b: bool) -> Val<'a> {
        Val::Own(Value::Bool(b))
    }
}

/// Go's truth: false, 0, empty string/array/object, nil and missing are false.
fn truth(v: &Val<'_>) -> bool {
    match v.get() {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// After each command Go unwraps `interface{}`: a nil becomes the invalid value.
fn dig(v: Val<'_>) -> Val<'_> {
    if matches!(v.get(), Some(Value::Null)) {
        Val::Missing
    } else {
        v
    }
}

/// An execution failure at a node.
struct ExecErr {
    pos: usize,
    at: String,
    msg: String,
}

impl ExecErr {
    fn into_error(self, src: &str) -> anyhow::Error {
        let before = &src[..self.pos.min(src.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(self.pos, |nl| self.pos - nl - 1);
        anyhow!(
            "template: {NAME}:{line}:{col}: executing \"{NAME}\" at <{}>: {}",
            self.at,
            self.msg
        )
    }
}

fn fail<T>(node: &Arg, msg: impl Into<String>) -> Result<T, ExecErr> {
    Err(ExecErr {
        pos: node.pos,
        at: node.to_string(),
        msg: msg.into(),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Header mode's title for a field path.
type HeaderFn<'a> = &'a dyn Fn(&[String]) -> String;

struct Exec<'a> {
    vars: Vec<(String, Val<'a>)>,
    out: String,
    header: Option<HeaderFn<'a>>,
}

impl<'a> Exec<'a> {
    fn walk(&mut self, dot: &Val<'a>, nodes: &'a [Node]) -> Result<Flow, ExecErr> {
        for node in nodes {
            let flow = match node {
                Node::Text(s) => {
                    self.out.push_str(s);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print(&v);
                    }
                    Flow::Normal
                }
                Node::If(b) => self.walk_if_with(dot, b, false)?,
                Node::With(b) => self.walk_if_with(dot, b, true)?,
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn print(&mut self, v: &Val<'_>) {
        match v.arg() {
            None => self.out.push_str("<no value>"),
            Some(Value::String(s)) => self.out.push_str(s),
            Some(other) => self.out.push_str(&gofmt::value(Some(other))),
        }
    }

    fn walk_if_with(&mut self, dot: &Val<'a>, b: &'a Branch, with: bool) -> Result<Flow, ExecErr> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if truth(&v) {
            self.walk(if with { &v } else { dot }, &b.list)?
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Val<'a>, b: &'a Branch) -> Result<Flow, ExecErr> {
        let mark = self.vars.len();
        let v = self.eval_cmds(dot, &b.pipe.cmds)?;
        if !b.pipe.is_assign {
            for name in &b.pipe.decl {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        let first = &b.pipe.cmds[0].args[0];
        // Integer ranges are generated lazily: `{{range 1000000000}}` must not
        // allocate its items up front.
        type Items<'a> = Box<dyn Iterator<Item = (Val<'a>, Val<'a>)> + 'a>;
        let items: Items<'a> = if self.header.is_some() {
            Box::new(std::iter::once((Val::str(""), v.clone())))
        } else {
            match v.get() {
                None | Some(Value::Null) => Box::new(std::iter::empty()),
                Some(Value::Array(a)) => {
                    let pairs: Vec<_> = (0..a.len())
                        .map(|i| (Val::int(i as i64), v.child(|x| x.as_array().and_then(|a| a.get(i)))))
                        .collect();
                    Box::new(pairs.into_iter())
                }
                Some(Value::Object(m)) => {
                    let mut keys: Vec<String> = m.keys().cloned().collect();
                    keys.sort();
                    let pairs: Vec<_> = keys
                        .into_iter()
                        .map(|k| {
                            let e = v.child(|x| x.get(&k));
                            (Val::str(k), e)
                        })
                        .collect();
                    Box::new(pairs.into_iter())
                }
                Some(Value::Number(n)) if n.as_i64().is_some() => {
                    if b.pipe.decl.len() > 1 {
                        return fail(first, format!("can't use {n} to iterate over more than one variable"));
                    }
                    Box::new((0..n.as_i64().unwrap_or(0).max(0)).map(|i| (Val::int(i), Val::int(i))))
                }
                Some(other) => return fail(first, format!("range can't iterate over {}", gofmt::value(Some(other)))),
            }
        };
        let mut items = items.peekable();
        // {{break}}/{{continue}} in the else list belong to an enclosing range.
        let mut flow = Flow::Normal;
        if items.peek().is_none()
            && let Some(e) = &b.else_list
        {
            flow = self.walk(dot, e)?;
        }
        for (key, elem) in items {
            match (b.pipe.decl.as_slice(), b.pipe.is_assign) {
                ([], _) => {}
                ([one], true) => self.set_var(one, elem.clone()),
                ([_], false) => self.vars[mark].1 = elem.clone(),
                ([k, e, ..], true) => {
                    self.set_var(k, key);
                    self.set_var(e, elem.clone());
                }
                (_, false) => {
                    self.vars[mark].1 = key;
                    self.vars[mark + 1].1 = elem.clone();
                }
            }
            let inner = self.vars.len();
            let f = self.walk(&elem, &b.list)?;
            self.vars.truncate(inner);
            if f == Flow::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn set_var(&mut self, name: &str, v: Val<'a>) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, node: &Arg, name: &str) -> Result<Val<'a>, ExecErr> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => fail(node, format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Val<'a>, pipe: &'a Pipe) -> Result<Val<'a>, ExecErr> {
        let v = self.eval_cmds(dot, &pipe.cmds)?;
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, v.clone());
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_cmds(&mut self, dot: &Val<'a>, cmds: &'a [Cmd]) -> Result<Val<'a>, ExecErr> {
        let mut value: Option<Val<'a>> = None;
        for cmd in cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(dig(v));
        }
        Ok(value.unwrap_or(Val::Missing))
    }

    fn eval_command(&mut self, dot: &Val<'a>, cmd: &'a Cmd, fin: Option<Val<'a>>) -> Result<Val<'a>, ExecErr> {
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || fin.is_some();
        match &first.kind {
            ArgKind::Ident(name) => return self.call(dot, first, name, &cmd.args[1..], fin, Some(cmd)),
            ArgKind::Field(path) | ArgKind::Var(_, path) | ArgKind::Chain(_, path) if has_args && !path.is_empty() => {
                let last = path.last().map_or("", String::as_str);
                return fail(first, format!("{last} is not a method but has arguments"));
            }
            ArgKind::Nil => return fail(first, "nil is not a command"),
            ArgKind::Pipe(p) if has_args => {
                let msg = format!("can't give argument to non-function {p}");
                return Err(ExecErr {
                    pos: first.pos,
                    at: cmd.to_string(),
                    msg,
                });
            }
            _ if has_args => return fail(first, format!("can't give argument to non-function {first}")),
            _ => {}
        }
        self.eval_arg(dot, first)
    }

    fn eval_arg(&mut self, dot: &Val<'a>, arg: &'a Arg) -> Result<Val<'a>, ExecErr> {
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Val::Own(Value::Null)),
            ArgKind::Bool(b) => Ok(Val::bool(*b)),
            ArgKind::Number(n, _) => Ok(Val::Own(Value::Number(n.clone()))),
            ArgKind::Str(s) => Ok(Val::str(s.as_str())),
            ArgKind::Field(path) => self.fields(arg, dot.clone(), path),
            ArgKind::Var(name, path) => {
                let v = self.var(arg, name)?;
                if path.is_empty() {
                    Ok(v)
                } else {
                    self.fields(arg, v, path)
                }
            }
            ArgKind::Chain(base, path) => {
                if matches!(base.kind, ArgKind::Nil) {
                    return fail(arg, format!("indirection through explicit nil in {arg}"));
                }
                let v = self.eval_arg(dot, base)?;
                self.fields(arg, v, path)
            }
            ArgKind::Pipe(p) => Ok(dig(self.eval_pipeline(dot, p)?)),
            ArgKind::Ident(name) => self.call(dot, arg, name, &[], None, None),
        }
    }

    /// Follows a field chain; in header mode yields the column title instead.
    fn fields(&self, node: &Arg, mut v: Val<'a>, path: &[String]) -> Result<Val<'a>, ExecErr> {
        if let Some(h) = self.header {
            return Ok(Val::str(h(path)));
        }
        for name in path {
            match v.get() {
                None | Some(Value::Null) => return Ok(Val::Missing),
                Some(Value::Object(_)) => v = v.child(|x| x.get(name.as_str())),
                Some(other) => {
                    let t = gofmt::type_name(Some(other));
                    return fail(node, format!("can't evaluate field {name} in type {t}"));
                }
            }
        }
        Ok(v)
    }

    /// Calls function `name` (the node `node`) with `args` and the piped value;
    /// `cmd` is the whole command, where Go reports a failing call.
    fn call(
        &mut self,
        dot: &Val<'a>,
        node: &'a Arg,
        name: &str,
        args: &'a [Arg],
        fin: Option<Val<'a>>,
        cmd: Option<&'a Cmd>,
    ) -> Result<Val<'a>, ExecErr> {
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(fin.is_some());
            if n == 0 {
                return fail(node, format!("wrong number of args for {name}: want at least 1 got 0"));
            }
            let mut last = Val::Missing;
            for a in args {
                last = self.eval_arg(dot, a)?;
                if truth(&last) == (name == "or") {
                    return Ok(last);
                }
            }
            return Ok(fin.unwrap_or(last));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        vals.extend(fin);
        let err = match builtin(name, &vals) {
            Ok(v) => return Ok(v),
            // Header mode feeds titles (strings) to functions written for the
            // data; a function that cannot take one passes its first argument on.
            Err(_) if self.header.is_some() => return Ok(vals.into_iter().next().unwrap_or(Val::str(""))),
            Err(e) => e,
        };
        match err {
            FnErr::Arity(msg) => fail(node, msg),
            FnErr::Arg { idx, want, got } => {
                let Some(arg) = args.get(idx) else {
                    return fail(node, arg_type_msg(want, got));
                };
                if matches!(arg.kind, ArgKind::Str(_) | ArgKind::Number(..) | ArgKind::Bool(_)) {
                    let want = if want == "int" { "integer" } else { want };
                    return fail(arg, format!("expected {want}; found {arg}"));
                }
                fail(arg, arg_type_msg(want, got))
            }
            FnErr::Call(msg) => {
                let msg = format!("error calling {name}: {msg}");
                match cmd {
                    Some(c) => Err(ExecErr {
                        pos: node.pos,
                        at: c.to_string(),
                        msg,
                    }),
                    None => fail(node, msg),
                }
            }
        }
    }
}

fn arg_type_msg(want: &str, got: Option<&str>) -> String {
    match got {
        None => format!("invalid value; expected {want}"),
        Some(t) => format!("wrong type for value; expected {want}; got {t}"),
    }
}

// ---------------------------------------------------------------------------
// Functions

/// Why a function call failed; [`Exec::call`] turns it into Go's message at
/// Go's node: the function name, one argument, or the whole command.
enum FnErr {
    /// Wrong number of arguments (reported at the function name).
    Arity(String),
    /// Argument `idx` has the wrong type: `want` is Go's parameter type,
    /// `got` the operand's type (`None` for nil).
    Arg {
        idx: usize,
        want: &'static str,
        got: Option<&'static str>,
    },
    /// The function itself failed ("error calling NAME: ...").
    Call(String),
}

fn arity(name: &str, vals: &[Val<'_>], want: usize) -> Result<(), FnErr> {
    if vals.len() != want {
        return Err(FnErr::Arity(format!(
            "wrong number of args for {name}: want {want} got {}",
            vals.len()
        )));
    }
    Ok(())
}

fn at_least(name: &str, vals: &[Val<'_>], want: usize) -> Result<(), FnErr> {
    if vals.len() < want {
        return Err(FnErr::Arity(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            vals.len()
        )));
    }
    Ok(())
}

fn type_err(idx: usize, want: &'static str, v: &Val<'_>) -> FnErr {
    FnErr::Arg {
        idx,
        want,
        got: v.arg().map(|x| gofmt::type_name(Some(x))),
    }
}

fn want_str<'v>(v: &'v [Val<'_>], idx: usize) -> Result<&'v str, FnErr> {
    match v[idx].arg() {
        Some(Value::String(s)) => Ok(s),
        _ => Err(type_err(idx, "string", &v[idx])),
    }
}

fn want_int(v: &[Val<'_>], idx: usize) -> Result<i64, FnErr> {
    match v[idx].arg() {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        _ => Err(type_err(idx, "int", &v[idx])),
    }
}

/// A `[]string` argument; elements that are not strings print as `%v`.
fn string_list(v: &[Val<'_>], idx: usize) -> Result<Vec<String>, FnErr> {
    match v[idx].arg() {
        Some(Value::Array(a)) => Ok(a
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => gofmt::value(Some(other)),
            })
            .collect()),
        _ => Err(type_err(idx, "[]string", &v[idx])),
    }
}

fn builtin<'a>(name: &str, v: &[Val<'a>]) -> Result<Val<'a>, FnErr> {
    let s = |i: usize| want_str(v, i);
    Ok(match name {
        "not" => {
            arity(name, v, 1)?;
            Val::bool(!truth(&v[0]))
        }
        "len" => {
            arity(name, v, 1)?;
            let n = match v[0].get() {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(m)) => m.len(),
                None | Some(Value::Null) => return Err(FnErr::Call("len of nil pointer".into())),
                Some(other) => return Err(FnErr::Call(format!("len of type {}", gofmt::type_name(Some(other))))),
            };
            Val::int(n as i64)
        }
        "index" => {
            at_least(name, v, 1)?;
            let mut cur = v[0].clone();
            for k in &v[1..] {
                cur = index_one(&cur, k).map_err(FnErr::Call)?;
            }
            cur
        }
        "slice" => {
            at_least(name, v, 1)?;
            slice(&v[0], &v[1..]).map_err(FnErr::Call)?
        }
        "print" => Val::str(gofmt::sprint(&v.iter().map(Val::arg).collect::<Vec<_>>())),
        "println" => Val::str(gofmt::sprintln(&v.iter().map(Val::arg).collect::<Vec<_>>())),
        "printf" => {
            at_least(name, v, 1)?;
            let args: Vec<_> = v[1..].iter().map(Val::arg).collect();
            Val::str(gofmt::sprintf(s(0)?, &args))
        }
        "eq" => {
            at_least(name, v, 1)?;
            if v.len() < 2 {
                return Err(FnErr::Call("missing argument for comparison".into()));
            }
            let mut any = false;
            for other in &v[1..] {
                any |= equal(&v[0], other).map_err(FnErr::Call)?;
            }
            Val::bool(any)
        }
        "ne" => {
            arity(name, v, 2)?;
            Val::bool(!equal(&v[0], &v[1]).map_err(FnErr::Call)?)
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, v, 2)?;
            let ord = order(&v[0], &v[1]).map_err(FnErr::Call)?;
            Val::bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "json" => {
            arity(name, v, 1)?;
            Val::str(gofmt::json(v[0].get()))
        }
        "upper" => {
            arity(name, v, 1)?;
            Val::str(s(0)?.to_uppercase())
        }
        "lower" => {
            arity(name, v, 1)?;
            Val::str(s(0)?.to_lowercase())
        }
        "title" => {
            arity(name, v, 1)?;
            Val::str(title(s(0)?))
        }
        "trim" => {
            arity(name, v, 1)?;
            Val::str(s(0)?.trim())
        }
        "join" => {
            arity(name, v, 2)?;
            Val::str(string_list(v, 0)?.join(s(1)?))
        }
        "split" => {
            arity(name, v, 2)?;
            let (text, sep) = (s(0)?, s(1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep).map(|p| Value::String(p.to_string())).collect()
            };
            Val::Own(Value::Array(parts))
        }
        "truncate" => {
            arity(name, v, 2)?;
            let n = usize::try_from(want_int(v, 1)?.max(0)).unwrap_or(0);
            Val::str(s(0)?.chars().take(n).collect::<String>())
        }
        "pad" => {
            arity(name, v, 3)?;
            let text = s(0)?;
            let (pre, post) = (want_int(v, 1)?.max(0) as usize, want_int(v, 2)?.max(0) as usize);
            if text.is_empty() {
                Val::str("")
            } else {
                Val::str(format!("{}{text}{}", " ".repeat(pre), " ".repeat(post)))
            }
        }
        "contains" => {
            arity(name, v, 2)?;
            Val::bool(s(0)?.contains(s(1)?))
        }
        "hasPrefix" => {
            arity(name, v, 2)?;
            Val::bool(s(0)?.starts_with(s(1)?))
        }
        "hasSuffix" => {
            arity(name, v, 2)?;
            Val::bool(s(0)?.ends_with(s(1)?))
        }
        "replace" => {
            if v.len() != 3 && v.len() != 4 {
                return Err(FnErr::Arity(format!(
                    "wrong number of args for replace: want 3 or 4 got {}",
                    v.len()
                )));
            }
            let (text, old, new) = (s(0)?, s(1)?, s(2)?);
            let n = if v.len() == 4 { want_int(v, 3)? } else { -1 };
            Val::str(match usize::try_from(n) {
                Ok(n) => text.replacen(old, new, n),
                Err(_) => text.replace(old, new),
            })
        }
        _ => return Err(FnErr::Call(format!("function {name:?} not defined"))),
    })
}

/// strings.Title: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn index_one<'a>(item: &Val<'a>, key: &Val<'_>) -> Result<Val<'a>, String> {
    match item.get() {
        None | Some(Value::Null) => Err("index of untyped nil".into()),
        Some(Value::Object(_)) => match key.arg() {
            Some(Value::String(k)) => {
                let k = k.clone();
                Ok(item.child(|x| x.get(&k)))
            }
            other => Err(format!("value has type {}; should be string", gofmt::type_name(other))),
        },
        Some(Value::Array(a)) => {
            let len = a.len();
            let i = index_number(key)?;
            if i < 0 || i as usize >= len {
                return Err(format!("index out of range: {i}"));
            }
            Ok(item.child(|x| x.as_array().and_then(|a| a.get(i as usize))))
        }
        Some(Value::String(s)) => {
            let i = index_number(key)?;
            match usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i)) {
                Some(b) => Ok(Val::int(i64::from(*b))),
                None => Err(format!("index out of range: {i}")),
            }
        }
        Some(other) => Err(format!("can't index item of type {}", gofmt::type_name(Some(other)))),
    }
}

fn index_number(key: &Val<'_>) -> Result<i64, String> {
    match key.arg() {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        None => Err("cannot index slice/array with nil".into()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            gofmt::type_name(other)
        )),
    }
}

fn slice<'a>(item: &Val<'a>, idx: &[Val<'_>]) -> Result<Val<'a>, String> {
    let len = match item.get() {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(a)) => a.len(),
        None | Some(Value::Null) => return Err("slice of untyped nil".into()),
        Some(other) => return Err(format!("can't slice item of type {}", gofmt::type_name(Some(other)))),
    };
    if idx.len() > 3 || (idx.len() == 3 && matches!(item.get(), Some(Value::String(_)))) {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let mut bounds = [0usize, len];
    for (k, i) in idx.iter().take(2).enumerate() {
        let n = index_number(i)?;
        if n < 0 || n as usize > len {
            return Err(format!("index out of range: {n}"));
        }
        bounds[k] = n as usize;
    }
    if bounds[0] > bounds[1] {
        return Err(format!("invalid slice index: {} > {}", bounds[0], bounds[1]));
    }
    let [lo, hi] = bounds;
    match item.get() {
        Some(Value::String(s)) => match s.get(lo..hi) {
            Some(sub) => Ok(Val::str(sub)),
            None => Err(format!("slice [{lo}:{hi}] splits a UTF-8 character")),
        },
        Some(Value::Array(a)) => Ok(Val::Own(Value::Array(a[lo..hi].to_vec()))),
        _ => Err("can't slice".into()),
    }
}

/// A comparable scalar: Go's basicKind.
enum Basic<'v> {
    Nil,
    Bool(bool),
    Num(f64, Option<i128>),
    Str(&'v str),
    Other,
}

fn basic<'v>(v: &'v Val<'_>) -> Basic<'v> {
    match v.arg() {
        None => Basic::Nil,
        Some(Value::Bool(b)) => Basic::Bool(*b),
        Some(Value::Number(n)) => {
            let exact = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
            Basic::Num(n.as_f64().unwrap_or(0.0), exact)
        }
        Some(Value::String(s)) => Basic::Str(s),
        Some(_) => Basic::Other,
    }
}

fn num_cmp(a: (f64, Option<i128>), b: (f64, Option<i128>)) -> std::cmp::Ordering {
    match (a.1, b.1) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn equal(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    Ok(match (basic(a), basic(b)) {
        (Basic::Nil, Basic::Nil) => true,
        (Basic::Nil, _) | (_, Basic::Nil) => false,
        (Basic::Bool(x), Basic::Bool(y)) => x == y,
        (Basic::Num(x, xi), Basic::Num(y, yi)) => num_cmp((x, xi), (y, yi)).is_eq(),
        (Basic::Str(x), Basic::Str(y)) => x == y,
        (Basic::Other, _) | (_, Basic::Other) => {
            let v = if matches!(basic(a), Basic::Other) {
                a.arg()
            } else {
                b.arg()
            };
            return Err(format!(
                "non-comparable type {}: {}",
                gofmt::sprintf("%s", &[v]),
                gofmt::type_name(v)
            ));
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn order(a: &Val<'_>, b: &Val<'_>) -> Result<std::cmp::Ordering, String> {
    match (basic(a), basic(b)) {
        (Basic::Num(x, xi), Basic::Num(y, yi)) => Ok(num_cmp((x, xi), (y, yi))),
        (Basic::Str(x), Basic::Str(y)) => Ok(x.cmp(y)),
        (Basic::Nil | Basic::Bool(_) | Basic::Other, _) | (_, Basic::Nil | Basic::Bool(_) | Basic::Other) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(src: &str, data: &Value) -> String {
        match Template::parse(src) {
            Ok(t) => t.render(data).unwrap_or_else(|e| panic!("render {src:?}: {e:#}")),
            Err(e) => panic!("parse {src:?}: {e:#}"),
        }
    }

    fn parse_err(src: &str) -> String {
        match Template::parse(src) {
            Ok(_) => panic!("{src:?} parsed"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn exec_err(src: &str, data: &Value) -> String {
        match Template::parse(src)
            .unwrap_or_else(|e| panic!("parse {src:?}: {e:#}"))
            .render(data)
        {
            Ok(out) => panic!("{src:?} rendered {out:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn data() -> Value {
        json!({
            "Name": "web",
            "Id": "0123456789abcdef",
            "Count": 3,
            "Ratio": 1.5,
            "Whole": 2.0,
            "On": true,
            "Off": false,
            "Nil": null,
            "Empty": [],
            "List": ["a", "b", "c"],
            "Nums": [0, 1, 2, 3, 4],
            "Map": {"b": 2, "a": 1},
            "Labels": {"app": "web", "tier": "front"},
            "Nested": {"Inner": {"Deep": "down"}},
            "Objs": [{"Name": "x"}, {"Name": "y"}],
            "Text": "  Hello, World  ",
        })
    }

    #[test]
    fn text_and_simple_fields() {
        let d = data();
        assert_eq!(r("plain text", &d), "plain text");
        assert_eq!(r("{{.Name}}", &d), "web");
        assert_eq!(r("{{.Nested.Inner.Deep}}", &d), "down");
        assert_eq!(r("{{ .Name }}-{{.Count}}", &d), "web-3");
        assert_eq!(r("{{.名前}}", &json!({"名前": "x"})), "x");
        assert_eq!(r("{{ .Name\n | upper }}", &d), "WEB");
    }

    #[test]
    fn missing_and_null_print_no_value() {
        let d = data();
        assert_eq!(r("{{.Missing}}", &d), "<no value>");
        assert_eq!(r("{{.Nested.Missing.Deeper}}", &d), "<no value>");
        assert_eq!(r("{{.Nil}}", &d), "<no value>");
        assert_eq!(r("{{.Nil.Field}}", &d), "<no value>");
        assert_eq!(r("{{print .Nil}} {{printf \"%v\" .Missing}}", &d), "<nil> <nil>");
        assert_eq!(r("{{json .Missing}} {{json .Nil}}", &d), "null null");
        assert_eq!(r("{{if .Missing}}y{{else}}n{{end}}", &d), "n");
    }

    #[test]
    fn values_print_like_go() {
        let d = data();
        assert_eq!(
            r("{{.Count}} {{.Ratio}} {{.Whole}} {{.On}} {{.Off}}", &d),
            "3 1.5 2 true false"
        );
        assert_eq!(r("{{.List}}", &d), "[a b c]");
        assert_eq!(r("{{.Map}}", &d), "map[a:1 b:2]");
        assert_eq!(r("{{.Objs}}", &d), "[map[Name:x] map[Name:y]]");
        assert_eq!(r("{{.Empty}}", &d), "[]");
        assert_eq!(r("{{.}}", &json!("just a string")), "just a string");
        assert_eq!(r("{{.}}", &json!({"k": [1, null]})), "map[k:[1 <nil>]]");
        assert_eq!(r("{{.}}", &json!(1e21)), "1e+21");
    }

    #[test]
    fn literals() {
        let d = data();
        assert_eq!(
            r(
                r#"{{"str"}} {{`raw\n`}} {{'a'}} {{1.5}} {{0x1F}} {{true}} {{-2}} {{1_000}}"#,
                &d
            ),
            "str raw\\n 97 1.5 31 true -2 1000"
        );
        assert_eq!(r(r#"{{"tab\there \u00e9 \x41"}}"#, &d), "tab\there é A");
        assert_eq!(r("{{.5}} {{1e3}} {{0o17}} {{0b101}}", &d), "0.5 1000 15 5");
    }

    #[test]
    fn trim_markers_and_comments() {
        let d = data();
        assert_eq!(r("a  {{- .Name -}}  b", &d), "awebb");
        assert_eq!(r("a\n\t {{- .Name}} \n", &d), "aweb \n");
        assert_eq!(r("x {{-3}}", &d), "x -3");
        assert_eq!(r("a{{/* a comment */}}b", &d), "ab");
        assert_eq!(r("a {{- /* trimmed */ -}} b", &d), "ab");
        assert_eq!(r("{{/* multi\nline */}}ok", &d), "ok");
    }

    #[test]
    fn cli_escapes_are_cooked_in_text_only() {
        let d = data();
        assert_eq!(r(r"{{.Name}}\t{{.Count}}\n", &d), "web\t3\n");
        // Inside an action the Go string escape applies (podman#13446).
        assert_eq!(r(r#"{{printf "%s\n" .Name}}"#, &d), "web\n");
        assert_eq!(r(r"{{`keep\t`}}", &d), "keep\\t");
        // \n before a trim marker is trimmed like a real newline.
        assert_eq!(r(r"a\n{{- .Name}}", &d), "aweb");
        let t = Template::parse_opts("{{.Name}} {{.Count}} x", true).unwrap();
        assert_eq!(t.render(&d).unwrap(), "web\t3\tx");
    }

    #[test]
    fn variables_and_root() {
        let d = data();
        assert_eq!(r("{{$x := .Name}}{{$x}}", &d), "web");
        assert_eq!(r("{{$x := 1}}{{$x = 2}}{{$x}}", &d), "2");
        assert_eq!(r("{{range .Objs}}{{.Name}}@{{$.Name}} {{end}}", &d), "x@web y@web ");
        assert_eq!(r("{{$}}", &json!(7)), "7");
        assert_eq!(
            r("{{with $v := .Nested.Inner}}{{$v.Deep}}{{.Deep}}{{end}}", &d),
            "downdown"
        );
        assert_eq!(r("{{$o := index .Objs 1}}{{$o.Name}}", &d), "y");
        // A variable set inside a block is visible until that block ends.
        assert_eq!(r("{{$x := 1}}{{if true}}{{$x = 5}}{{end}}{{$x}}", &d), "5");
    }

    #[test]
    fn range_over_arrays_objects_and_integers() {
        let d = data();
        assert_eq!(r("{{range .List}}[{{.}}]{{end}}", &d), "[a][b][c]");
        assert_eq!(r("{{range $i, $e := .List}}{{$i}}={{$e}} {{end}}", &d), "0=a 1=b 2=c ");
        assert_eq!(r("{{range $e := .List}}{{$e}}{{end}}", &d), "abc");
        assert_eq!(r("{{range $k, $v := .Map}}{{$k}}:{{$v}};{{end}}", &d), "a:1;b:2;");
        assert_eq!(r("{{range .Map}}{{.}}{{end}}", &d), "12");
        assert_eq!(r("{{range 3}}{{.}}{{end}}", &d), "012");
        assert_eq!(
            r("{{range 1000000000000}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}", &d),
            "01"
        );
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}", &d), "none");
        assert_eq!(r("{{range .Missing}}x{{else}}none{{end}}", &d), "none");
        assert_eq!(r("{{range .Nil}}x{{end}}.", &d), ".");
        let tmpl = "{{range .Nums}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}";
        assert_eq!(r(tmpl, &d), "02");
        assert_eq!(
            r("{{range .Objs}}{{range $.List}}{{.}}{{end}}{{break}}{{end}}", &d),
            "abc"
        );
        assert_eq!(
            r("{{$i := 0}}{{$e := 0}}{{range $i, $e = .List}}{{end}}{{$i}}{{$e}}", &d),
            "2c"
        );
    }

    #[test]
    fn if_else_if_and_with() {
        let t = Template::parse("{{if .A}}a{{else if .B}}b{{else}}c{{end}}").unwrap();
        assert_eq!(t.render(&json!({"A": 1})).unwrap(), "a");
        assert_eq!(t.render(&json!({"A": 0, "B": "x"})).unwrap(), "b");
        assert_eq!(t.render(&json!({"A": "", "B": []})).unwrap(), "c");
        let d = data();
        assert_eq!(r("{{with .Nested.Inner}}{{.Deep}}{{else}}none{{end}}", &d), "down");
        assert_eq!(r("{{with .Missing}}{{.}}{{else}}none{{end}}", &d), "none");
        assert_eq!(r("{{with .Missing}}x{{else with .Name}}{{.}}{{end}}", &d), "web");
        assert_eq!(r("{{if and .On (not .Off)}}yes{{end}}", &d), "yes");
        assert_eq!(
            r("{{if .Map}}m{{end}}{{if .Empty}}e{{end}}{{if .Whole}}w{{end}}", &d),
            "mw"
        );
    }

    #[test]
    fn pipelines_and_parentheses() {
        let d = data();
        assert_eq!(r("{{.Name | upper}}", &d), "WEB");
        assert_eq!(r(r#"{{.Name | printf "%s!" | upper}}"#, &d), "WEB!");
        assert_eq!(r("{{(index .List 1)}}", &d), "b");
        assert_eq!(r("{{(index .Objs 0).Name}}", &d), "x");
        assert_eq!(r(r#"{{printf "%d items" (len .List)}}"#, &d), "3 items");
        // The piped value is the last argument: join's separator here.
        assert_eq!(r(r#"{{"," | join .List}}"#, &d), "a,b,c");
        assert_eq!(r("{{(.Nested).Inner.Deep}}", &d), "down");
    }

    #[test]
    fn string_functions() {
        let d = data();
        assert_eq!(
            r(
                "{{upper .Name}} {{lower \"MiXeD\"}} {{title \"hello wide-world x_y\"}}",
                &d
            ),
            "WEB mixed Hello Wide-World X_y"
        );
        assert_eq!(r(r#"{{join .List ", "}}"#, &d), "a, b, c");
        assert_eq!(
            r(
                r#"{{split "a:b:c" ":"}} {{len (split "a:b" ":")}} {{split "ab" ""}}"#,
                &d
            ),
            "[a b c] 2 [a b]"
        );
        assert_eq!(r("{{truncate .Id 12}} {{truncate .Name 12}}", &d), "0123456789ab web");
        assert_eq!(
            r(
                r#"{{contains .Name "e"}} {{hasPrefix .Id "012"}} {{hasSuffix .Id "x"}}"#,
                &d
            ),
            "true true false"
        );
        assert_eq!(
            r(r#"{{replace "a-b-c" "-" "+"}} {{replace "a-b-c" "-" "+" 1}}"#, &d),
            "a+b+c a+b-c"
        );
        assert_eq!(r("[{{trim .Text}}]", &d), "[Hello, World]");
        assert_eq!(r(r#"[{{pad .Name 1 2}}][{{pad "" 1 1}}]"#, &d), "[ web  ][]");
        assert_eq!(
            r(r#"{{slice .Id 0 4}} {{slice .List 1}} {{slice .List 1 2}}"#, &d),
            "0123 [b c] [b]"
        );
    }

    #[test]
    fn json_len_index() {
        let d = data();
        assert_eq!(r("{{json .Labels}}", &d), r#"{"app":"web","tier":"front"}"#);
        assert_eq!(
            r("{{json .List}} {{json .Name}} {{json .Count}}", &d),
            r#"["a","b","c"] "web" 3"#
        );
        assert_eq!(r("{{json .}}", &json!({"h": "<&>"})), r#"{"h":"<&>"}"#);
        assert_eq!(
            r("{{len .List}} {{len .Map}} {{len .Name}} {{len .Empty}}", &d),
            "3 2 3 0"
        );
        assert_eq!(
            r(
                r#"{{index .Labels "app"}} {{index .List 2}} {{index .Objs 1 "Name"}}"#,
                &d
            ),
            "web c y"
        );
        assert_eq!(r(r#"{{index .Labels "nope"}}"#, &d), "<no value>");
        assert_eq!(r(r#"{{index .Name 0}}"#, &d), "119");
        assert_eq!(r("{{index .List}}", &d), "[a b c]");
    }

    #[test]
    fn comparisons_and_logic() {
        let d = data();
        assert_eq!(
            r(
                r#"{{eq .Name "web"}} {{eq .Count 1 2 3}} {{ne .Count 3}} {{eq .Missing "x"}}"#,
                &d
            ),
            "true true false false"
        );
        assert_eq!(
            r(
                "{{lt 1 2}} {{le 2 2}} {{gt 1.5 2}} {{ge .Count 3}} {{lt \"a\" \"b\"}}",
                &d
            ),
            "true true false true true"
        );
        assert_eq!(
            r(
                "{{eq .Ratio 1.5}} {{eq .Whole 2}} {{eq .On true}} {{eq .Nil .Missing}}",
                &d
            ),
            "true true true true"
        );
        assert_eq!(
            r(
                "{{and 1 0 2}}|{{and 1 2}}|{{or 0 \"\" \"x\"}}|{{or 0 \"\"}}|{{not 0}}",
                &d
            ),
            "0|2|x||true"
        );
        assert_eq!(r("{{.Count | and 1}}", &d), "3");
        // and/or stop at the first decisive argument: the index error is never reached.
        assert_eq!(r("{{or .Name (index .List 99)}}", &d), "web");
    }

    #[test]
    fn print_family() {
        let d = data();
        assert_eq!(r(r#"{{print 1 2 "a" "b" 3}}"#, &d), "1 2ab3");
        assert_eq!(r(r#"{{println "a" 1}}"#, &d), "a 1\n");
        assert_eq!(
            r(
                r#"{{printf "%-6s|%5d|%.2f|%q|%v|%%" .Name .Count .Ratio .Name .List}}"#,
                &d
            ),
            "web   |    3|1.50|\"web\"|[a b c]|%"
        );
        assert_eq!(r(r#"{{printf "%s %d" .Name}}"#, &d), "web %!d(MISSING)");
        assert_eq!(r(r#"{{printf "%d" .Name}}"#, &d), "%!d(string=web)");
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert_eq!(parse_err("{{.A"), "template: output:1: unclosed action");
        assert_eq!(parse_err("line one\n{{.A"), "template: output:2: unclosed action");
        assert_eq!(parse_err("{{if .A}}x"), "template: output:1: unexpected EOF");
        assert_eq!(parse_err("{{end}}"), "template: output:1: unexpected {{end}}");
        assert_eq!(parse_err("{{else}}"), "template: output:1: unexpected {{else}}");
        assert_eq!(
            parse_err("{{if .A}}{{else}}{{else}}{{end}}"),
            "template: output:1: expected end; found {{else}}"
        );
        assert_eq!(
            parse_err("{{nofunc .A}}"),
            "template: output:1: function \"nofunc\" not defined"
        );
        assert_eq!(parse_err("{{$x}}"), "template: output:1: undefined variable \"$x\"");
        assert_eq!(
            parse_err("{{if true}}{{$x := 1}}{{end}}{{$x}}"),
            "template: output:1: undefined variable \"$x\""
        );
        assert_eq!(
            parse_err("{{.A | 3}}"),
            "template: output:1: non executable command in pipeline stage 2"
        );
        assert_eq!(parse_err("{{}}"), "template: output:1: missing value for command");
        assert_eq!(
            parse_err("{{.A |}}"),
            "template: output:1: missing command after | in command"
        );
        assert_eq!(
            parse_err("{{break}}"),
            "template: output:1: {{break}} outside {{range}}"
        );
        assert_eq!(
            parse_err("{{range .}}{{continue 1}}{{end}}"),
            "template: output:1: unexpected \"1\" in {{continue}}"
        );
        assert_eq!(parse_err("{{\"abc}}"), "template: output:1: unterminated quoted string");
        assert_eq!(
            parse_err("{{`abc}}"),
            "template: output:1: unterminated raw quoted string"
        );
        assert_eq!(
            parse_err("{{'ab'}}"),
            "template: output:1: malformed character constant: 'ab'"
        );
        assert_eq!(parse_err("{{/* x }}"), "template: output:1: unclosed comment");
        assert_eq!(
            parse_err("{{/* x */ .A}}"),
            "template: output:1: comment ends before closing delimiter"
        );
        assert_eq!(parse_err("{{#}}"), "template: output:1: unexpected \"#\" in command");
        assert_eq!(
            parse_err("{{.A } }}"),
            "template: output:1: unexpected \"}\" in operand"
        );
        assert_eq!(
            parse_err("{{.A \u{2603}}}"),
            "template: output:1: unrecognized character in action: U+2603 '\u{2603}'"
        );
        assert_eq!(
            parse_err("{{.A}}}{{.B!}}"),
            "template: output:1: bad character U+0021 '!'"
        );
        assert_eq!(parse_err("{{3x}}"), "template: output:1: bad number syntax: \"3x\"");
        assert_eq!(parse_err("{{(.A}}"), "template: output:1: unclosed left paren");
        assert_eq!(parse_err("{{.A)}}"), "template: output:1: unexpected \")\" in command");
        assert_eq!(parse_err("{{.A :}}"), "template: output:1: expected :=");
        assert_eq!(
            parse_err("{{\"s\".A}}"),
            "template: output:1: unexpected . after term \"\\\"s\\\"\""
        );
        assert_eq!(
            parse_err("{{.A \"x\"\"y\"}}"),
            "template: output:1: unexpected \"\\\"y\\\"\" in operand"
        );
        assert_eq!(
            parse_err("{{template \"x\"}}"),
            "template: output:1: {{template}} is not supported"
        );
        assert_eq!(
            parse_err("{{range $i, $e, $f := .}}{{end}}"),
            "template: output:1: too many declarations in range"
        );
        assert_eq!(
            parse_err("{{$x, $y := .}}"),
            "template: output:1: too many declarations in command"
        );
        assert_eq!(parse_err("{{$x = 1}}"), "template: output:1: undefined variable \"$x\"");
        assert_eq!(
            parse_err("{{1i}}"),
            "template: output:1: complex number \"1i\" is not supported"
        );
        assert_eq!(
            parse_err("{{with .A}}{{else if .B}}{{end}}"),
            "template: output:1: unexpected <if> in input"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("{{{{{}.A{}}}}}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_err(&src).contains("nested too deeply"));
        let src = format!("{}x{}", "{{if true}}".repeat(5000), "{{end}}".repeat(5000));
        assert!(parse_err(&src).contains("nested too deeply"));
        let ok = format!("{}x{}", "{{if true}}".repeat(50), "{{end}}".repeat(50));
        assert_eq!(r(&ok, &json!({})), "x");
    }

    #[test]
    fn exec_errors_say_where_and_what() {
        let d = data();
        assert_eq!(
            exec_err("{{.Name.First}}", &d),
            "template: output:1:7: executing \"output\" at <.Name.First>: can't evaluate field First in type string"
        );
        assert_eq!(
            exec_err("ok\n  {{index .List 5}}", &d),
            "template: output:2:4: executing \"output\" at <index .List 5>: error calling index: index out of range: 5"
        );
        assert!(exec_err("{{len 3}}", &d).ends_with("error calling len: len of type int"));
        assert!(exec_err("{{upper 3}}", &d).ends_with("at <3>: expected string; found 3"));
        assert!(
            exec_err("{{upper .Count}}", &d).ends_with("at <.Count>: wrong type for value; expected string; got int")
        );
        assert!(
            exec_err("{{.Count | upper}}", &d).ends_with("at <upper>: wrong type for value; expected string; got int")
        );
        assert!(exec_err("{{upper .Missing}}", &d).ends_with("at <.Missing>: invalid value; expected string"));
        assert!(exec_err("{{upper}}", &d).ends_with("wrong number of args for upper: want 1 got 0"));
        assert!(
            exec_err(r#"{{eq "a" 1}}"#, &d)
                .ends_with("at <eq \"a\" 1>: error calling eq: incompatible types for comparison")
        );
        assert!(exec_err(r#"{{lt true false}}"#, &d).ends_with("error calling lt: invalid type for comparison"));
        assert!(exec_err(r#"{{eq .List .List}}"#, &d).ends_with("non-comparable type [a b c]: []interface {}"));
        assert!(exec_err(r#"{{.Name "x"}}"#, &d).ends_with("Name is not a method but has arguments"));
        assert!(exec_err(r#"{{"x" | .Name}}"#, &d).ends_with("Name is not a method but has arguments"));
        assert!(exec_err(r#"{{$x := 1}}{{$x 2}}"#, &d).ends_with("at <$x>: can't give argument to non-function $x"));
        assert!(exec_err("{{range .Name}}{{end}}", &d).ends_with("range can't iterate over web"));
        assert!(
            exec_err("{{range $i, $e := 3}}{{end}}", &d)
                .ends_with("can't use 3 to iterate over more than one variable")
        );
        assert!(exec_err("{{nil}}", &d).ends_with("nil is not a command"));
        assert!(exec_err("{{truncate .Name \"x\"}}", &d).ends_with("at <\"x\">: expected integer; found \"x\""));
        assert!(exec_err("{{(1) 2}}", &d).ends_with("at <(1) 2>: can't give argument to non-function 1"));
        assert!(exec_err("{{slice .Name 2 1}}", &d).ends_with("invalid slice index: 2 > 1"));
        assert!(exec_err("{{join .Name \",\"}}", &d).ends_with("expected []string; got string"));
    }

    #[test]
    fn header_mode_titles_fields_and_runs_ranges_once() {
        let t =
            Template::parse("{{.ID}}|{{.A.B}}|{{range .L}}<{{.}}>{{else}}never{{end}}|{{$.X}}|{{upper .y}}").unwrap();
        let title = |p: &[String]| p.join("+").to_uppercase();
        assert_eq!(t.render_header(&title).unwrap(), "ID|A+B|<L>|X|Y");
    }

    #[test]
    fn source_helpers() {
        let t = Template::parse("{{.A}}\\n").unwrap();
        assert!(t.ends_with_newline());
        assert_eq!(t.source(), "{{.A}}\\n");
        assert!(!Template::parse("{{.A}}").unwrap().ends_with_newline());
        assert!(Template::parse("x{{range .}}{{.}}{{end}}").unwrap().ranges_over_dot());
        assert!(!Template::parse("{{range .L}}{{end}}").unwrap().ranges_over_dot());
        assert!(!Template::parse("{{range $x := .}}{{end}}").unwrap().ranges_over_dot());
    }
}

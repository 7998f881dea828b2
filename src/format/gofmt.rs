//! Go `fmt` printing of JSON values: `%v` the way Go prints `interface{}` data
//! decoded from JSON, and the `Sprint`/`Sprintln`/`Sprintf` behaviour that the
//! template functions `print`, `println` and `printf` expose.
//!
//! A value is `Option<&Value>`: `None` (and JSON `null`) is Go's untyped nil.
//! Integers print as Go `int`, other numbers as `float64` (shortest `%g`), arrays
//! as `[a b]`, objects as `map[k:v]` in sorted key order. Verbs that do not fit
//! an operand produce Go's in-band errors (`%!d(string=abc)`, `%!s(MISSING)`).

use serde_json::{Number, Value};

/// One operand: `None` is Go's nil.
pub(crate) type Arg<'a> = Option<&'a Value>;

/// A JSON number as Go would hold it after decoding into our data.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// Treats JSON null as nil.
fn non_null(v: Arg<'_>) -> Arg<'_> {
    v.filter(|v| !v.is_null())
}

/// Go's type name for a value, as `%T` and the error forms print it.
pub(crate) fn type_name(v: Arg<'_>) -> &'static str {
    match non_null(v) {
        None => "<nil>",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) => match num(n) {
            Num::Int(i) if i > i128::from(i64::MAX) => "uint64",
            Num::Int(_) => "int",
            Num::Float(_) => "float64",
        },
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
        Some(Value::Null) => "<nil>",
    }
}

/// `fmt.Sprint(v)`: the `%v` form.
pub(crate) fn value(v: Arg<'_>) -> String {
    let mut out = String::new();
    print_arg(&mut out, v, 'v', Spec::default(), 0);
    out
}

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Arg<'_>]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Some(Value::String(_)));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        print_arg(&mut out, *a, 'v', Spec::default(), 0);
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln(args...)`: spaces between all operands, newline at the end.
pub(crate) fn sprintln(args: &[Arg<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_arg(&mut out, *a, 'v', Spec::default(), 0);
    }
    out.push('\n');
    out
}

/// Flags, width and precision of one directive.
#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

/// Go rejects widths and precisions above this (`tooLarge`).
const MAX_NUM: usize = 1_000_000;

/// Parses a decimal number at `i`; returns (value, present, next index).
fn parse_num(b: &[u8], mut i: usize, end: usize) -> (usize, bool, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < end && b[i].is_ascii_digit() {
        n = n * 10 + usize::from(b[i] - b'0');
        if n > MAX_NUM {
            return (0, false, end);
        }
        i += 1;
    }
    (n, i > start, i)
}

/// State of one `Sprintf` call.
struct Printf<'f, 'a> {
    fmt: &'f str,
    args: &'f [Arg<'a>],
    arg_num: usize,
    reordered: bool,
    good_arg_num: bool,
}

impl Printf<'_, '_> {
    /// An explicit `[n]` argument index at `i`: (found, next index).
    fn arg_number(&mut self, i: usize) -> (bool, usize) {
        let b = self.fmt.as_bytes();
        if i >= b.len() || b[i] != b'[' {
            return (false, i);
        }
        self.reordered = true;
        let rest = &b[i..];
        let (index, wid, ok) = if rest.len() < 3 {
            (0, 1, false)
        } else {
            match rest.iter().position(|&c| c == b']') {
                Some(close) => {
                    let (n, ok, next) = parse_num(rest, 1, close);
                    if !ok || next != close || n == 0 {
                        (0, close + 1, false)
                    } else {
                        (n - 1, close + 1, true)
                    }
                }
                None => (0, 1, false),
            }
        };
        if ok && index < self.args.len() {
            self.arg_num = index;
            return (true, i + wid);
        }
        self.good_arg_num = false;
        (ok, i + wid)
    }

    /// A `*` width or precision taken from the next operand.
    fn int_from_arg(&mut self) -> Option<i64> {
        let v = self.args.get(self.arg_num).copied().flatten();
        if self.arg_num < self.args.len() {
            self.arg_num += 1;
        }
        match v {
            Some(Value::Number(n)) => match num(n) {
                Num::Int(i) if i.unsigned_abs() <= MAX_NUM as u128 => i64::try_from(i).ok(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `fmt.Sprintf(format, args...)`.
pub(crate) fn sprintf(format: &str, args: &[Arg<'_>]) -> String {
    let b = format.as_bytes();
    let end = b.len();
    let mut out = String::new();
    let mut p = Printf {
        fmt: format,
        args,
        arg_num: 0,
        reordered: false,
        good_arg_num: true,
    };
    let mut i = 0;
    while i < end {
        p.good_arg_num = true;
        let lasti = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[lasti..i]);
        if i >= end {
            break;
        }
        i += 1;
        let mut s = Spec::default();
        while i < end {
            match b[i] {
                b'#' => s.sharp = true,
                b'0' => s.zero = !s.minus,
                b'+' => s.plus = true,
                b'-' => {
                    s.minus = true;
                    s.zero = false;
                }
                b' ' => s.space = true,
                _ => break,
            }
            i += 1;
        }
        let (mut after_index, ni) = p.arg_number(i);
        i = ni;
        if i < end && b[i] == b'*' {
            i += 1;
            match p.int_from_arg() {
                Some(w) => {
                    if w < 0 {
                        s.minus = true;
                        s.zero = false;
                    }
                    s.wid = usize::try_from(w.unsigned_abs()).ok();
                }
                None => out.push_str("%!(BADWIDTH)"),
            }
            after_index = false;
        } else {
            let (w, present, ni) = parse_num(b, i, end);
            i = ni;
            if present {
                s.wid = Some(w);
                if after_index {
                    p.good_arg_num = false;
                }
            }
        }
        if i + 1 < end && b[i] == b'.' {
            i += 1;
            if after_index {
                p.good_arg_num = false;
            }
            let (found, ni) = p.arg_number(i);
            after_index = found;
            i = ni;
            if i < end && b[i] == b'*' {
                i += 1;
                match p.int_from_arg() {
                    Some(n) if n >= 0 => s.prec = usize::try_from(n).ok(),
                    Some(_) => s.prec = None,
                    None => out.push_str("%!(BADPREC)"),
                }
                after_index = false;
            } else {
                let (n, _, ni) = parse_num(b, i, end);
                i = ni;
                s.prec = Some(n);
            }
        }
        if !after_index {
            let (_, ni) = p.arg_number(i);
            i = ni;
        }
        let Some(verb) = format[i.min(end)..].chars().next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
        } else if !p.good_arg_num {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if p.arg_num >= args.len() {
            out.push_str(&format!("%!{verb}(MISSING)"));
        } else {
            if verb == 'v' {
                // %+v only differs from %v for Go structs; %#v is Go syntax.
                s.plus = false;
                if s.sharp {
                    s.sharp = false;
                    pad(&mut out, &go_syntax(args[p.arg_num], true), s);
                    p.arg_num += 1;
                    continue;
                }
            }
            print_arg(&mut out, args[p.arg_num], verb, s, 0);
            p.arg_num += 1;
        }
    }
    if !p.reordered && p.arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[p.arg_num..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            match non_null(*a) {
                None => out.push_str("<nil>"),
                Some(v) => {
                    out.push_str(type_name(Some(v)));
                    out.push('=');
                    print_arg(&mut out, Some(v), 'v', Spec::default(), 0);
                }
            }
        }
        out.push(')');
    }
    out
}

/// Formats one operand (Go's printArg/printValue).
fn print_arg(out: &mut String, v: Arg<'_>, verb: char, s: Spec, depth: usize) {
    let v = non_null(v);
    if verb == 'T' && depth == 0 {
        pad(out, type_name(v), s);
        return;
    }
    match v {
        None if depth > 0 => out.push_str("<nil>"),
        None if verb == 'v' => pad(out, "<nil>", s),
        None => bad_verb(out, verb, None),
        Some(Value::Bool(b)) => match verb {
            't' | 'v' => pad(out, if *b { "true" } else { "false" }, s),
            _ => bad_verb(out, verb, v),
        },
        Some(Value::Number(n)) => match num(n) {
            Num::Int(i) => fmt_int(out, i, verb, s, v),
            Num::Float(f) => fmt_float(out, f, verb, s, v),
        },
        Some(Value::String(st)) => match verb {
            'v' | 's' => {
                let t: String = match s.prec {
                    Some(p) => st.chars().take(p).collect(),
                    None => st.clone(),
                };
                pad(out, &t, s);
            }
            'q' => {
                let q = if s.sharp && can_backquote(st) {
                    format!("`{st}`")
                } else {
                    quote_with(st, '"', s.plus)
                };
                pad(out, &q, s);
            }
            'x' | 'X' => {
                let bytes = st.as_bytes();
                let bytes = &bytes[..s.prec.unwrap_or(bytes.len()).min(bytes.len())];
                let mut h = String::new();
                for (i, byte) in bytes.iter().enumerate() {
                    // `% x` separates bytes; `#` prefixes each of them then, else the whole.
                    if s.space && i > 0 {
                        h.push(' ');
                    }
                    if s.sharp && (s.space || i == 0) {
                        h.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        h.push_str(&format!("{byte:02x}"));
                    } else {
                        h.push_str(&format!("{byte:02X}"));
                    }
                }
                pad(out, &h, s);
            }
            _ => bad_verb(out, verb, v),
        },
        Some(Value::Array(a)) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_arg(out, Some(e), verb, s, depth + 1);
            }
            out.push(']');
        }
        Some(Value::Object(m)) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let key = Value::String(k.clone());
                print_arg(out, Some(&key), verb, s, depth + 1);
                out.push(':');
                print_arg(out, m.get(k), verb, s, depth + 1);
            }
            out.push(']');
        }
        Some(Value::Null) => out.push_str("<nil>"),
    }
}

/// `%#v`: the value as a Go literal of the types JSON decodes into.
/// `top` is false inside a container, where nil is `interface {}(nil)`.
fn go_syntax(v: Arg<'_>, top: bool) -> String {
    match non_null(v) {
        None if top => "<nil>".into(),
        None => "interface {}(nil)".into(),
        Some(Value::String(st)) => quote(st),
        Some(Value::Array(a)) => {
            let items: Vec<String> = a.iter().map(|e| go_syntax(Some(e), false)).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Some(Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", quote(k), go_syntax(m.get(*k), false)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
        Some(other) => value(Some(other)),
    }
}

/// `%!verb(type=value)`.
fn bad_verb(out: &mut String, verb: char, v: Arg<'_>) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    match non_null(v) {
        None => out.push_str("<nil>"),
        Some(v) => {
            out.push_str(type_name(Some(v)));
            out.push('=');
            print_arg(out, Some(v), 'v', Spec::default(), 0);
        }
    }
    out.push(')');
}

/// Pads to the width, on the left (zeros if asked) or on the right with `-`.
fn pad(out: &mut String, text: &str, s: Spec) {
    let width = text.chars().count();
    let fill = s.wid.unwrap_or(0).saturating_sub(width);
    if fill == 0 {
        out.push_str(text);
    } else if s.minus {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else {
        out.extend(std::iter::repeat_n(if s.zero { '0' } else { ' ' }, fill));
        out.push_str(text);
    }
}

fn fmt_int(out: &mut String, i: i128, verb: char, s: Spec, v: Arg<'_>) {
    match verb {
        'v' | 'd' => fmt_integer(out, i, 10, false, verb, s),
        'b' => fmt_integer(out, i, 2, false, verb, s),
        'o' | 'O' => fmt_integer(out, i, 8, false, verb, s),
        'x' => fmt_integer(out, i, 16, false, verb, s),
        'X' => fmt_integer(out, i, 16, true, verb, s),
        'c' => {
            let c = to_char(i);
            pad(out, c.encode_utf8(&mut [0; 4]), s);
        }
        'q' => pad(out, &quote_rune(to_char(i), s.plus), s),
        'U' => {
            let mut t = format!("U+{:04X}", i.max(0));
            if s.sharp {
                let c = to_char(i);
                if is_print(c) {
                    t.push_str(&format!(" '{c}'"));
                }
            }
            pad(out, &t, s);
        }
        _ => bad_verb(out, verb, v),
    }
}

fn to_char(i: i128) -> char {
    u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}')
}

/// Go's fmt.fmtInteger: precision as minimum digits, `0` flag, `#` prefixes, sign.
fn fmt_integer(out: &mut String, i: i128, base: u32, upper: bool, verb: char, s: Spec) {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut prec = 0usize;
    if let Some(p) = s.prec {
        if p == 0 && u == 0 {
            pad(out, "", Spec { zero: false, ..s });
            return;
        }
        prec = p;
    } else if s.zero && !s.minus && s.wid.is_some() {
        prec = s.wid.unwrap_or(0);
        if neg || s.plus || s.space {
            prec = prec.saturating_sub(1);
        }
    }
    let mut digits = to_base(u, base, upper);
    if digits.len() < prec {
        digits = "0".repeat(prec - digits.len()) + &digits;
    }
    let mut t = String::new();
    if neg {
        t.push('-');
    } else if s.plus {
        t.push('+');
    } else if s.space {
        t.push(' ');
    }
    if s.sharp {
        match base {
            2 => t.push_str("0b"),
            8 if !digits.starts_with('0') => t.push('0'),
            16 => t.push_str(if upper { "0X" } else { "0x" }),
            _ => {}
        }
    }
    if verb == 'O' {
        t.push_str("0o");
    }
    t.push_str(&digits);
    pad(out, &t, Spec { zero: false, ..s });
}

fn to_base(mut u: u128, base: u32, upper: bool) -> String {
    if u == 0 {
        return "0".into();
    }
    let mut d = Vec::new();
    while u > 0 {
        let r = (u % u128::from(base)) as u32;
        let c = char::from_digit(r, base).unwrap_or('?');
        d.push(if upper { c.to_ascii_uppercase() } else { c });
        u /= u128::from(base);
    }
    d.iter().rev().collect()
}

fn fmt_float(out: &mut String, f: f64, verb: char, s: Spec, v: Arg<'_>) {
    let (verb, prec) = match verb {
        'v' | 'g' | 'G' => (if verb == 'v' { 'g' } else { verb }, s.prec),
        'e' | 'E' | 'f' | 'F' => (verb, Some(s.prec.unwrap_or(6))),
        _ => return bad_verb(out, verb, v),
    };
    let mut body = format_float(f.abs(), verb, prec);
    if s.sharp {
        body = sharp_float(body, verb, prec);
    }
    let sign = if f.is_sign_negative() {
        Some('-')
    } else if s.plus {
        Some('+')
    } else if s.space {
        Some(' ')
    } else {
        None
    };
    match sign {
        Some(c) => {
            let len = body.chars().count() + 1;
            match s.wid {
                Some(w) if s.zero && !s.minus && w > len => {
                    out.push(c);
                    out.extend(std::iter::repeat_n('0', w - len));
                    out.push_str(&body);
                }
                _ => pad(out, &format!("{c}{body}"), s),
            }
        }
        None => pad(out, &body, s),
    }
}

/// The `#` flag on floats: always a decimal point, and for %g the trailing
/// zeros up to the precision (6 by default), as Go's fmt does.
fn sharp_float(body: String, verb: char, prec: Option<usize>) -> String {
    let mut digits: i64 = if verb == 'g' || verb == 'G' {
        prec.map_or(6, |p| p as i64)
    } else {
        0
    };
    let (num, tail) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], &body[i..]),
        None => (body.as_str(), ""),
    };
    let mut seen_nonzero = false;
    for c in num.chars().filter(char::is_ascii_digit) {
        seen_nonzero |= c != '0';
        if seen_nonzero {
            digits -= 1;
        }
    }
    let mut num = num.to_string();
    if !num.contains('.') {
        if num == "0" {
            digits -= 1;
        }
        num.push('.');
    }
    while digits > 0 {
        num.push('0');
        digits -= 1;
    }
    num + tail
}

/// Decimal digits of a non-negative float and the position of the decimal point:
/// value = 0.d1d2d3... * 10^dp. `sig` = significant digits, or shortest.
fn float_digits(x: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let e = match sig {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), x),
        None => format!("{x:e}"),
    };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.iter().all(|&d| d == b'0') {
        return (vec![b'0'], 1);
    }
    (digits, exp + 1)
}

/// strconv.FormatFloat without the sign: 'e'/'E', 'f', 'g'/'G' (prec None = shortest).
fn format_float(x: f64, verb: char, prec: Option<usize>) -> String {
    match verb {
        'e' | 'E' => {
            let p = prec.unwrap_or(6);
            let e = format!("{x:.p$e}");
            let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
            format!("{mant}{}", go_exponent(verb, exp.parse().unwrap_or(0)))
        }
        'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), x),
        _ => {
            let upper = verb == 'G';
            let (digits, dp) = match prec {
                None => float_digits(x, None),
                Some(p) => float_digits(x, Some(p.max(1))),
            };
            let nd = digits.len() as i32;
            let (eprec, p) = match prec {
                None => (6, nd),
                Some(p) => {
                    let p = p.max(1) as i32;
                    let mut eprec = p;
                    if eprec > nd && nd >= dp {
                        eprec = nd;
                    }
                    (eprec, p)
                }
            };
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                let p = p.min(nd);
                fmt_e(&digits, dp, (p - 1).max(0) as usize, if upper { 'E' } else { 'e' })
            } else {
                let p = if p > dp { nd } else { p };
                fmt_f(&digits, dp, (p - dp).max(0) as usize)
            }
        }
    }
}

fn go_exponent(verb: char, exp: i32) -> String {
    let e = if verb.is_ascii_uppercase() { 'E' } else { 'e' };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{e}{sign}{:02}", exp.unsigned_abs())
}

fn fmt_e(digits: &[u8], dp: i32, prec: usize, e: char) -> String {
    let mut s = String::new();
    s.push(char::from(digits.first().copied().unwrap_or(b'0')));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(char::from(digits.get(i).copied().unwrap_or(b'0')));
        }
    }
    let exp = if digits == b"0" { 0 } else { dp - 1 };
    s.push_str(&go_exponent(e, exp));
    s
}

fn fmt_f(digits: &[u8], dp: i32, prec: usize) -> String {
    let digit = |i: i32| -> char {
        if i < 0 {
            '0'
        } else {
            char::from(digits.get(i as usize).copied().unwrap_or(b'0'))
        }
    };
    let mut s = String::new();
    if dp > 0 {
        for i in 0..dp {
            s.push(digit(i));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 0..prec as i32 {
            s.push(digit(dp + i));
        }
    }
    s
}

/// `encoding/json` output with HTML escaping off, as podman's `json` template
/// function writes it: compact, map keys sorted, floats in Go's form
/// (`2` not `2.0`, `1e+21`, `1e-7`).
pub(crate) fn json(v: Arg<'_>) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut String, v: Arg<'_>) {
    match v {
        None | Some(Value::Null) => out.push_str("null"),
        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::Number(n)) => match num(n) {
            Num::Int(i) => out.push_str(&i.to_string()),
            Num::Float(f) => out.push_str(&json_float(f)),
        },
        Some(Value::String(s)) => json_string(out, s),
        Some(Value::Array(a)) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, Some(e));
            }
            out.push(']');
        }
        Some(Value::Object(m)) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                write_json(out, m.get(k));
            }
            out.push('}');
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// encoding/json's float form: shortest digits, plain notation between 1e-6
/// and 1e21, else exponent without a leading zero (`1e-7`, `1e+21`).
fn json_float(f: f64) -> String {
    let abs = f.abs();
    let (digits, dp) = float_digits(abs, None);
    let nd = digits.len() as i32;
    let body = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = fmt_e(&digits, dp, (nd - 1).max(0) as usize, 'e');
        match e.split_once("e-0") {
            Some((m, x)) if x.len() == 1 => format!("{m}e-{x}"),
            _ => e,
        }
    } else {
        fmt_f(&digits, dp, (nd - dp).max(0) as usize)
    };
    if f.is_sign_negative() { format!("-{body}") } else { body }
}

/// Go's strconv.IsPrint, approximated with Rust's character classes.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let format_char = matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}');
    !(c.is_control() || c.is_whitespace() || format_char)
}

fn escape_rune(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) && (!ascii_only || c.is_ascii()) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        escape_rune(&mut out, c, quote, ascii_only);
    }
    out.push(quote);
    out
}

/// strconv.Quote.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from('\'');
    escape_rune(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !c.is_control()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(x: &Value) -> String {
        value(Some(x))
    }

    fn pf(f: &str, args: &[Value]) -> String {
        let a: Vec<Arg<'_>> = args.iter().map(Some).collect();
        sprintf(f, &a)
    }

    #[test]
    fn value_prints_like_go_percent_v() {
        assert_eq!(v(&json!("raw \"str\"")), "raw \"str\"");
        assert_eq!(v(&json!(42)), "42");
        assert_eq!(v(&json!(-7)), "-7");
        assert_eq!(v(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(v(&json!(true)), "true");
        assert_eq!(v(&json!(null)), "<nil>");
        assert_eq!(value(None), "<nil>");
        assert_eq!(v(&json!(["a", 1, null, [true]])), "[a 1 <nil> [true]]");
        assert_eq!(
            v(&json!({"b": 2, "a": "x", "c": {"z": []}})),
            "map[a:x b:2 c:map[z:[]]]"
        );
    }

    #[test]
    fn floats_print_shortest_with_go_exponents() {
        assert_eq!(v(&json!(1.5)), "1.5");
        assert_eq!(v(&json!(2.0)), "2");
        assert_eq!(v(&json!(0.1)), "0.1");
        assert_eq!(v(&json!(123456.0)), "123456");
        assert_eq!(v(&json!(1000000.0)), "1e+06");
        assert_eq!(v(&json!(123456789.0)), "1.23456789e+08");
        assert_eq!(v(&json!(0.0001)), "0.0001");
        assert_eq!(v(&json!(0.00001)), "1e-05");
        assert_eq!(v(&json!(-2.5)), "-2.5");
        assert_eq!(v(&json!(0.0)), "0");
        assert_eq!(v(&json!(1e100)), "1e+100");
    }

    #[test]
    fn printf_strings_and_widths() {
        assert_eq!(
            pf("%s|%10s|%-10s|", &[json!("a"), json!("b"), json!("c")]),
            "a|         b|c         |"
        );
        assert_eq!(pf("%.2s", &[json!("héllo")]), "hé");
        assert_eq!(pf("%5.1s|", &[json!("xyz")]), "    x|");
        assert_eq!(pf("%q", &[json!("a\"b\n\t\u{1}é")]), "\"a\\\"b\\n\\t\\x01é\"");
        assert_eq!(pf("%+q", &[json!("é")]), "\"\\u00e9\"");
        assert_eq!(pf("%#q", &[json!("a\"b")]), "`a\"b`");
        assert_eq!(pf("%x %X % d", &[json!("hi"), json!("hi"), json!(5)]), "6869 6869  5");
        assert_eq!(
            pf("% x|%#x|% #x", &[json!("hi"), json!("hi"), json!("hi")]),
            "68 69|0x6869|0x68 0x69"
        );
        assert_eq!(pf("100%%", &[]), "100%");
        assert_eq!(pf("%v %v", &[json!(["a", "b"]), json!({"k": 1})]), "[a b] map[k:1]");
        assert_eq!(pf("%s", &[json!(["a", "b"])]), "[a b]");
        assert_eq!(pf("%q", &[json!(["a", "b"])]), "[\"a\" \"b\"]");
    }

    #[test]
    fn printf_integers() {
        assert_eq!(
            pf(
                "%d|%5d|%-5d|%05d|%+d",
                &[json!(7), json!(7), json!(7), json!(-7), json!(7)]
            ),
            "7|    7|7    |-0007|+7"
        );
        assert_eq!(
            pf(
                "%x %X %o %O %b %#x %#o",
                &[
                    json!(255),
                    json!(255),
                    json!(8),
                    json!(8),
                    json!(5),
                    json!(255),
                    json!(8)
                ]
            ),
            "ff FF 10 0o10 101 0xff 010"
        );
        assert_eq!(pf("%.3d|%.0d|%6.3d", &[json!(7), json!(0), json!(-7)]), "007||  -007");
        assert_eq!(
            pf("%c %q %U %#U", &[json!(65), json!(65), json!(65), json!(0x263A)]),
            "A 'A' U+0041 U+263A '☺'"
        );
        assert_eq!(pf("%*d|%-*d|", &[json!(4), json!(1), json!(3), json!(2)]), "   1|2  |");
        assert_eq!(pf("%[2]d %[1]d", &[json!(1), json!(2)]), "2 1");
    }

    #[test]
    fn printf_floats() {
        assert_eq!(
            pf(
                "%f %.2f %8.3f %-8.1f|",
                &[json!(1.5), json!(2.345), json!(1.23456), json!(2.25)]
            ),
            "1.500000 2.35    1.235 2.2     |"
        );
        assert_eq!(
            pf("%e %.2E", &[json!(123456.0), json!(0.000123)]),
            "1.234560e+05 1.23E-04"
        );
        assert_eq!(
            pf(
                "%g %.3g %.3g %g",
                &[json!(0.5), json!(1234.5678), json!(1.0), json!(1e21)]
            ),
            "0.5 1.23e+03 1 1e+21"
        );
        assert_eq!(
            pf(
                "%+.1f % .1f %08.2f %+08.2f",
                &[json!(1.0), json!(1.0), json!(-3.5), json!(3.5)]
            ),
            "+1.0  1.0 -0003.50 +0003.50"
        );
        assert_eq!(pf("%v", &[json!(1e6)]), "1e+06");
        assert_eq!(
            pf(
                "%6.2v|%#.0e|%#g|%#.3g|%#.0f",
                &[json!(1.23456), json!(15.0), json!(1.0), json!(2.0), json!(3.0)]
            ),
            "   1.2|2.e+01|1.00000|2.00|3."
        );
    }

    #[test]
    fn printf_go_syntax() {
        assert_eq!(
            pf("%#v|%#v|%#v", &[json!("web"), json!(3), json!(true)]),
            "\"web\"|3|true"
        );
        assert_eq!(
            pf("%#v", &[json!(["a", null, 1])]),
            "[]interface {}{\"a\", interface {}(nil), 1}"
        );
        assert_eq!(
            pf("%#v", &[json!({"b": [], "a": "x"})]),
            "map[string]interface {}{\"a\":\"x\", \"b\":[]interface {}{}}"
        );
        assert_eq!(sprintf("%#v", &[None]), "<nil>");
    }

    #[test]
    fn printf_reports_mismatches_in_band_like_go() {
        assert_eq!(pf("%d", &[json!("abc")]), "%!d(string=abc)");
        assert_eq!(pf("%s", &[json!(5)]), "%!s(int=5)");
        assert_eq!(pf("%d", &[json!(1.5)]), "%!d(float64=1.5)");
        assert_eq!(pf("%t", &[json!("x")]), "%!t(string=x)");
        assert_eq!(pf("%s %s", &[json!("a")]), "a %!s(MISSING)");
        assert_eq!(
            pf("%s", &[json!("a"), json!(1), json!("b")]),
            "a%!(EXTRA int=1, string=b)"
        );
        assert_eq!(pf("%", &[]), "%!(NOVERB)");
        assert_eq!(pf("%z", &[json!(1)]), "%!z(int=1)");
        assert_eq!(pf("%[5]d", &[json!(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%s|%v|%d", &[None, None, None]), "%!s(<nil>)|<nil>|%!d(<nil>)");
        assert_eq!(pf("%d", &[json!(["a", 2])]), "[%!d(string=a) 2]");
        assert_eq!(
            pf("%T %T %T", &[json!(1), json!("s"), json!([1])]),
            "int string []interface {}"
        );
    }

    #[test]
    fn sprint_spacing_follows_go() {
        let a = json!("a");
        let b = json!("b");
        let one = json!(1);
        let two = json!(2);
        assert_eq!(sprint(&[Some(&a), Some(&b)]), "ab");
        assert_eq!(sprint(&[Some(&one), Some(&two)]), "1 2");
        assert_eq!(sprint(&[Some(&a), Some(&one), Some(&two), Some(&b)]), "a1 2b");
        assert_eq!(sprintln(&[Some(&a), Some(&b), Some(&one)]), "a b 1\n");
        assert_eq!(sprint(&[None, None]), "<nil> <nil>");
    }

    #[test]
    fn json_matches_encoding_json() {
        let j = |x: Value| json(Some(&x));
        assert_eq!(
            j(json!({"b": [1, 2.0, 1.5], "a": null, "c": "<&>\"\n\u{1}"})),
            r#"{"a":null,"b":[1,2,1.5],"c":"<&>\"\n\u0001"}"#
        );
        assert_eq!(j(json!(1e21)), "1e+21");
        assert_eq!(j(json!(1e20)), "100000000000000000000");
        assert_eq!(j(json!(1e-7)), "1e-7");
        assert_eq!(j(json!(0.000001)), "0.000001");
        assert_eq!(j(json!(-0.5)), "-0.5");
        assert_eq!(j(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(json(None), "null");
    }

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\\b"), "\"a\\\\b\"");
        assert_eq!(quote("\u{7f}\u{a0}\u{1F600}"), "\"\\x7f\\u00a0\u{1F600}\"");
    }
}

//! podman's `--format` conventions for `ps`, `images`, `inspect`, `info`,
//! `version` and `system df`: what the flag's value means ([`parse`]), how rows
//! go through a template ([`render_rows`]), and how tables are aligned
//! ([`align_tabs`]). The Go template language itself is in [`template`].
//!
//! The conventions, as podman (containers/common `pkg/report`) applies them:
//! - no `--format`, `""` or `table` alone: the verb's default output;
//! - `json` (also `{{json}}`): the verb's JSON output, not a template;
//! - `table TEMPLATE`: a header row, then one row per item, aligned in columns
//!   (spaces between actions separate columns, like tabs);
//! - anything else: a template run once per item, each output followed by a
//!   newline unless the template ends with one. A template containing
//!   `{{range .}}` gets the whole list instead.
//!
//! The `\t` and `\n` typed in a shell string become a tab and a newline.

mod gofmt;
mod tabwriter;
pub mod template;

use anyhow::{Context, Result};
use serde_json::Value;

pub use template::Template;

/// podman's tabwriter settings: `tabwriter.NewWriter(w, 12, 2, 2, ' ', 0)`.
const MIN_WIDTH: usize = 12;
const PADDING: usize = 2;

/// What `--format` asks for.
#[derive(Debug, Clone)]
pub enum Format {
    /// No `--format`, an empty one, or `table` alone: the verb's own output.
    Default,
    /// `--format json`.
    Json,
    /// A Go template; `table` when it started with the `table` keyword.
    Template { tmpl: Template, table: bool },
}

/// Interprets the value of `--format`.
pub fn parse(arg: Option<&str>) -> Result<Format> {
    let arg = match arg {
        None | Some("") => return Ok(Format::Default),
        Some(a) => a,
    };
    if is_json(arg) {
        return Ok(Format::Json);
    }
    if let Some(body) = table_body(arg) {
        if body.trim().is_empty() {
            return Ok(Format::Default);
        }
        let tmpl =
            Template::parse_opts(&with_newline(body), true).with_context(|| format!("invalid --format {arg:?}"))?;
        return Ok(Format::Template { tmpl, table: true });
    }
    let tmpl = Template::parse(&with_newline(arg)).with_context(|| format!("invalid --format {arg:?}"))?;
    Ok(Format::Template { tmpl, table: false })
}

/// `json`, `{{json}}` or `{{ json }}` (podman's IsJSON; `{{json .}}` stays a template).
fn is_json(arg: &str) -> bool {
    let t = arg.trim();
    t == "json"
        || t.strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .is_some_and(|inner| inner.trim() == "json")
}

/// The template after a leading `table` keyword, if there is one.
fn table_body(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix("table")?;
    if rest.is_empty() || rest.starts_with([' ', '\t', '{']) {
        Some(rest.trim_start_matches([' ', '\t']))
    } else {
        None
    }
}

/// podman appends a newline to a template that does not end with one.
fn with_newline(src: &str) -> String {
    if src.ends_with('\n') || src.ends_with("\\n") {
        src.to_string()
    } else {
        format!("{src}\n")
    }
}

/// Renders rows through a template.
///
/// With `table`, a header row comes first: each field action `{{.Field}}` gets
/// the title `headers` gives for "Field" (upper-cased), or else the field name
/// split at camel-case humps and upper-cased ("CreatedAt" → "CREATED AT"); a
/// chain `{{.A.B}}` looks up "A.B". Header and rows are then aligned like Go's
/// tabwriter with podman's settings (see [`align_tabs`]); cells are separated
/// by tabs in the rendered text.
///
/// Without `table`, each row is rendered and followed by a newline unless the
/// template ends with one; a template with a top-level `{{range .}}` is run
/// once on the array of all rows, as podman does.
pub fn render_rows(fmt_tmpl: &Template, table: bool, headers: &[(&str, &str)], rows: &[Value]) -> Result<String> {
    if table {
        return render_table(fmt_tmpl, true, headers, rows);
    }
    let newline = !fmt_tmpl.ends_with_newline();
    let mut out = String::new();
    if fmt_tmpl.ranges_over_dot() {
        out.push_str(&fmt_tmpl.render(&Value::Array(rows.to_vec()))?);
        if newline {
            out.push('\n');
        }
        return Ok(out);
    }
    for row in rows {
        out.push_str(&fmt_tmpl.render(row)?);
        if newline {
            out.push('\n');
        }
    }
    Ok(out)
}

/// [`render_rows`] for tables, with the header row optional (`--noheading`).
pub fn render_table(tmpl: &Template, heading: bool, headers: &[(&str, &str)], rows: &[Value]) -> Result<String> {
    let newline = !tmpl.ends_with_newline();
    let mut out = String::new();
    if heading {
        let title = |path: &[String]| header_title(headers, path);
        out.push_str(&tmpl.render_header(&title)?);
        if newline {
            out.push('\n');
        }
    }
    for row in rows {
        out.push_str(&tmpl.render(row)?);
        if newline {
            out.push('\n');
        }
    }
    Ok(align_tabs(&out))
}

/// Aligns tab-separated cells the way podman's tables are (Go's tabwriter with
/// minwidth 12, padding 2, spaces): each column is as wide as its widest cell
/// plus 2, at least 12, over each run of consecutive lines having that column;
/// the text after a line's last tab is not padded. Usable for default tables.
pub fn align_tabs(text: &str) -> String {
    tabwriter::align(text, MIN_WIDTH, PADDING)
}

/// The column title for a field path: the `headers` entry, else the path
/// split at camel-case humps, upper-cased.
fn header_title(headers: &[(&str, &str)], path: &[String]) -> String {
    let key = path.join(".");
    if let Some((_, title)) = headers.iter().find(|(k, _)| *k == key) {
        return title.to_uppercase();
    }
    path.iter()
        .map(|p| split_camel(p).join(" "))
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Splits an identifier at changes between lower case, upper case, digits and
/// other characters, moving the last capital of a run of capitals to the word
/// that follows it: "CreatedAt" → ["Created", "At"], "PDFLoader" → ["PDF",
/// "Loader"], "ID" → ["ID"] (the rules of github.com/fatih/camelcase that
/// podman uses for headers).
pub fn split_camel(s: &str) -> Vec<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Other,
    }
    let class = |c: char| {
        if c.is_lowercase() {
            Class::Lower
        } else if c.is_uppercase() {
            Class::Upper
        } else if c.is_numeric() {
            Class::Digit
        } else {
            Class::Other
        }
    };
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = None;
    for c in s.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some(run) if last == Some(k) => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = Some(k);
    }
    for i in 0..runs.len().saturating_sub(1) {
        let upper_then_lower =
            runs[i].first().is_some_and(|c| c.is_uppercase()) && runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if upper_then_lower && let Some(c) = runs[i].pop() {
            runs[i + 1].insert(0, c);
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(String::from_iter)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(f: &str) -> (Template, bool) {
        match parse(Some(f)).unwrap() {
            Format::Template { tmpl, table } => (tmpl, table),
            other => panic!("{f:?} parsed as {other:?}"),
        }
    }

    fn rows() -> Vec<Value> {
        vec![
            json!({"ID": "c061a0839e", "Names": "one", "CreatedAt": "2024-01-01"}),
            json!({"ID": "f10fc2e11057", "Names": "two", "CreatedAt": "2024-01-02"}),
            json!({"ID": "1eb6fab5aa8f4b5cbfd3e66aa35e9b2a", "Names": "three", "CreatedAt": "2024-01-03"}),
        ]
    }

    #[test]
    fn parse_recognises_podman_keywords() {
        assert!(matches!(parse(None).unwrap(), Format::Default));
        assert!(matches!(parse(Some("")).unwrap(), Format::Default));
        assert!(matches!(parse(Some("table")).unwrap(), Format::Default));
        assert!(matches!(parse(Some("table ")).unwrap(), Format::Default));
        assert!(matches!(parse(Some("json")).unwrap(), Format::Json));
        assert!(matches!(parse(Some(" json ")).unwrap(), Format::Json));
        assert!(matches!(parse(Some("{{ json }}")).unwrap(), Format::Json));
        let (t, table) = template("{{json .}}");
        assert!(!table);
        assert_eq!(t.render(&json!({"a": 1})).unwrap(), "{\"a\":1}\n");
        let (_, table) = template("table {{.ID}}");
        assert!(table);
        let (_, table) = template("table{{.ID}}");
        assert!(table);
        let (t, table) = template("tablespoon {{.ID}}");
        assert!(!table);
        assert_eq!(t.render(&json!({"ID": "x"})).unwrap(), "tablespoon x\n");
    }

    #[test]
    fn parse_errors_name_the_flag_and_the_problem() {
        let err = parse(Some("{{.ID")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("invalid --format \"{{.ID\""), "{msg}");
        assert!(msg.contains("unclosed action"), "{msg}");
        let msg = format!("{:#}", parse(Some("table {{if .A}}")).unwrap_err());
        assert!(msg.contains("unexpected EOF"), "{msg}");
    }

    #[test]
    fn plain_rows_get_a_newline_each_and_escapes_are_cooked() {
        let (t, _) = template(r"{{.ID}}\t{{.Names}}");
        let got = render_rows(&t, false, &[], &rows()).unwrap();
        assert_eq!(
            got,
            "c061a0839e\tone\nf10fc2e11057\ttwo\n1eb6fab5aa8f4b5cbfd3e66aa35e9b2a\tthree\n"
        );
        // A template ending in a newline (escaped or real) gets no second one.
        let (t, _) = template(r"{{.Names}}\n");
        assert_eq!(render_rows(&t, false, &[], &rows()).unwrap(), "one\ntwo\nthree\n");
        let (t, _) = template("{{.Names}},");
        assert_eq!(render_rows(&t, false, &[], &rows()).unwrap(), "one,\ntwo,\nthree,\n");
        // Rendering through Template::parse directly: render_rows adds the newline.
        let t = Template::parse("{{.Names}}").unwrap();
        assert_eq!(render_rows(&t, false, &[], &rows()).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_range_over_dot_gets_all_rows_at_once() {
        let (t, _) = template("{{range .}}{{.Names}} {{end}}");
        assert_eq!(render_rows(&t, false, &[], &rows()).unwrap(), "one two three \n");
        let (t, _) = template("{{range .}}{{.ID}}{{end -}}");
        assert_eq!(
            render_rows(&t, false, &[], &rows()).unwrap(),
            "c061a0839ef10fc2e110571eb6fab5aa8f4b5cbfd3e66aa35e9b2a"
        );
    }

    #[test]
    fn table_headers_come_from_overrides_or_camel_case() {
        let (t, _) = template(r"table {{.ID}}\t{{.Names}}\t{{.CreatedAt}}");
        let got = render_rows(&t, true, &[("ID", "container id")], &rows()).unwrap();
        let want = "\
CONTAINER ID                      NAMES       CREATED AT
c061a0839e                        one         2024-01-01
f10fc2e11057                      two         2024-01-02
1eb6fab5aa8f4b5cbfd3e66aa35e9b2a  three       2024-01-03
";
        assert_eq!(got, want);
    }

    #[test]
    fn table_header_alone_matches_podman() {
        // `podman ps -a --format "table {{.ID}}\t{{.Names}}\t{{.CreatedAt}}"`
        // with no containers prints exactly this (podman 4.3.1).
        let (t, _) = template(r"table {{.ID}}\t{{.Names}}\t{{.CreatedAt}}");
        let got = render_rows(&t, true, &[("ID", "CONTAINER ID")], &[]).unwrap();
        assert_eq!(got, "CONTAINER ID  NAMES       CREATED AT\n");
        // podman turns spaces between actions into column breaks.
        let (t, _) = template("table {{.ID}} {{.Names}} {{.CreatedAt}}");
        let got = render_rows(&t, true, &[("ID", "CONTAINER ID")], &[]).unwrap();
        assert_eq!(got, "CONTAINER ID  NAMES       CREATED AT\n");
    }

    #[test]
    fn table_spaces_inside_actions_are_kept() {
        let (t, _) = template(r#"table {{.Names}}\t{{printf "%s %s" .ID .Names}}"#);
        let got = render_rows(&t, true, &[], &rows()[..1]).unwrap();
        assert_eq!(got, "NAMES       ID NAMES\none         c061a0839e one\n");
    }

    #[test]
    fn table_header_for_chains_functions_and_ranges() {
        let data = vec![json!({"Config": {"Image": "alpine"}, "Names": ["a", "b"], "Size": 10})];
        let (t, _) = template(r"table {{.Config.Image}}\t{{range .Names}}{{.}},{{end}}\t{{.Size | printf `%d B`}}");
        let got = render_rows(&t, true, &[], &data).unwrap();
        assert_eq!(
            got,
            "CONFIG IMAGE  NAMES,      %!d(string=SIZE) B\nalpine        a,b,        10 B\n"
        );
        let got = render_rows(&t, true, &[("Config.Image", "Image")], &data).unwrap();
        assert!(got.starts_with("IMAGE       NAMES,"), "{got}");
        // Functions that cannot take a title pass their first argument through.
        let (t, _) = template(r#"table {{index .Labels "app"}}\t{{len .Names}}"#);
        let data = vec![json!({"Labels": {"app": "web"}, "Names": ["x"]})];
        assert_eq!(
            render_rows(&t, true, &[], &data).unwrap(),
            "LABELS      5\nweb         1\n"
        );
    }

    #[test]
    fn noheading_tables_still_align() {
        let (t, _) = template(r"table {{.ID}}\t{{.Names}}");
        let got = render_table(&t, false, &[], &rows()[..2]).unwrap();
        assert_eq!(got, "c061a0839e    one\nf10fc2e11057  two\n");
    }

    #[test]
    fn align_tabs_matches_go_tabwriter_settings() {
        assert_eq!(
            align_tabs("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n"),
            "REPOSITORY  TAG         IMAGE ID    CREATED     SIZE\n"
        );
        assert_eq!(
            align_tabs("a-very-long-repository-name\tlatest\n\tx\n"),
            "a-very-long-repository-name  latest\n                             x\n"
        );
    }

    #[test]
    fn camel_case_split_follows_fatih_rules() {
        assert_eq!(split_camel("CreatedAt"), ["Created", "At"]);
        assert_eq!(split_camel("ID"), ["ID"]);
        assert_eq!(split_camel("PodID"), ["Pod", "ID"]);
        assert_eq!(split_camel("PDFLoader"), ["PDF", "Loader"]);
        assert_eq!(split_camel("IPv4Address"), ["I", "Pv", "4", "Address"]);
        assert_eq!(split_camel("Fieldb"), ["Fieldb"]);
        assert_eq!(split_camel("exit_code"), ["exit", "_", "code"]);
        assert_eq!(header_title(&[], &["RunningFor".into()]), "RUNNING FOR");
        assert_eq!(header_title(&[("Pod", "pod id")], &["Pod".into()]), "POD ID");
    }
}

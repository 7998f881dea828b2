//! `--change` instructions (import, commit): a Containerfile instruction applied
//! to an image config held as JSON, so fields oci-spec does not model survive.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// Splits a shell-like word list honouring double and single quotes and
/// backslash escapes: `a="b c" d` → [`a=b c`, `d`].
pub fn split_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        Some(x) => cur.push(x),
                        None => bail!("unterminated quote in {s:?}"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The JSON (exec) form `["a","b"]` if `s` is one, else the shell form.
fn command_form(s: &str) -> Vec<String> {
    let t = s.trim();
    if t.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(t)
    {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), t.to_string()]
}

fn key_values(args: &str, what: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(args)?;
    if words.len() >= 2 && !words[0].contains('=') {
        // The legacy form `ENV KEY value with spaces`: the rest of the line,
        // as written, is the value.
        let t = args.trim();
        let key_end = t.find(char::is_whitespace).unwrap_or(t.len());
        let rest = split_words(&t[key_end..])?.join(" ");
        return Ok(vec![(t[..key_end].to_string(), rest)]);
    }
    let mut v = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, val)) if !k.is_empty() => v.push((k.to_string(), val.to_string())),
            _ => bail!("{what} wants KEY=VALUE, got {w:?}"),
        }
    }
    if v.is_empty() {
        bail!("{what} wants KEY=VALUE");
    }
    Ok(v)
}

fn config_obj(image_config: &mut Value) -> &mut Map<String, Value> {
    if !image_config.get("config").is_some_and(Value::is_object) {
        image_config["config"] = json!({});
    }
    image_config["config"].as_object_mut().expect("config is an object")
}

/// Applies one instruction, such as `CMD ["sh"]`, `ENV A=b`, or `EXPOSE 80/udp`
/// (`INSTRUCTION=args` is accepted too, as podman does).
pub fn apply(image_config: &mut Value, change: &str) -> Result<()> {
    let change = change.trim();
    let split = change
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(change.len());
    let (instr, args) = (
        change[..split].to_ascii_uppercase(),
        change[split..].trim_start_matches('=').trim(),
    );
    let cfg = config_obj(image_config);
    match instr.as_str() {
        "CMD" => {
            cfg.insert("Cmd".into(), json!(command_form(args)));
        }
        "ENTRYPOINT" => {
            if args.is_empty() {
                cfg.remove("Entrypoint");
            } else {
                cfg.insert("Entrypoint".into(), json!(command_form(args)));
            }
        }
        "ENV" => {
            let mut env: Vec<String> = cfg
                .get("Env")
                .and_then(|e| serde_json::from_value(e.clone()).ok())
                .unwrap_or_default();
            for (k, v) in key_values(args, "ENV")? {
                env.retain(|e| e.split_once('=').map(|x| x.0) != Some(k.as_str()) && e != &k);
                env.push(format!("{k}={v}"));
            }
            cfg.insert("Env".into(), json!(env));
        }
        "LABEL" => {
            let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in key_values(args, "LABEL")? {
                labels[k] = json!(v);
            }
        }
        "WORKDIR" => {
            if args.is_empty() {
                bail!("WORKDIR wants a path");
            }
            cfg.insert("WorkingDir".into(), json!(args));
        }
        "USER" => {
            if args.is_empty() {
                bail!("USER wants a user");
            }
            cfg.insert("User".into(), json!(args));
        }
        "EXPOSE" => {
            let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for p in split_words(args)? {
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let proto = proto.to_ascii_lowercase();
                let valid_num = |n: &str| n.parse::<u16>().is_ok_and(|n| n > 0);
                let range_ok = match num.split_once('-') {
                    Some((a, b)) => valid_num(a) && valid_num(b),
                    None => valid_num(num),
                };
                if !range_ok || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    bail!("EXPOSE: invalid port {p:?}");
                }
                ports[format!("{num}/{proto}")] = json!({});
            }
        }
        "STOPSIGNAL" => {
            crate::container::signal::parse_signal(args).context("STOPSIGNAL")?;
            cfg.insert("StopSignal".into(), json!(args));
        }
        "VOLUME" => {
            let vols: Vec<String> = if args.trim_start().starts_with('[') {
                serde_json::from_str(args).context("VOLUME: invalid JSON array")?
            } else {
                split_words(args)?
            };
            let obj = cfg.entry("Volumes").or_insert_with(|| json!({}));
            if !obj.is_object() {
                *obj = json!({});
            }
            for v in vols {
                if !v.starts_with('/') {
                    bail!("VOLUME: {v:?} is not an absolute path");
                }
                obj[v] = json!({});
            }
        }
        "" => bail!("empty --change instruction"),
        other => bail!(
            "--change {other} is not supported: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_instructions() {
        let mut c = json!({"architecture": "amd64"});
        apply(&mut c, r#"CMD ["/bin/sh", "-c", "echo hi"]"#).unwrap();
        apply(&mut c, "ENTRYPOINT /bin/run me").unwrap();
        apply(&mut c, "ENV A=b").unwrap();
        apply(&mut c, "ENV=C=d e=\"f g\"").unwrap();
        apply(&mut c, "ENV A=z").unwrap();
        apply(&mut c, "ENV LEGACY value with spaces").unwrap();
        apply(&mut c, "WORKDIR /srv").unwrap();
        apply(&mut c, "USER 1000:1000").unwrap();
        apply(&mut c, "LABEL a=1 \"b c\"=2").unwrap();
        apply(&mut c, "EXPOSE 80 53/UDP").unwrap();
        apply(&mut c, "STOPSIGNAL SIGINT").unwrap();
        apply(&mut c, "VOLUME /data /cache").unwrap();
        let cfg = &c["config"];
        assert_eq!(cfg["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(cfg["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run me"]));
        assert_eq!(cfg["Env"], json!(["C=d", "e=f g", "A=z", "LEGACY=value with spaces"]));
        assert_eq!(cfg["WorkingDir"], "/srv");
        assert_eq!(cfg["User"], "1000:1000");
        assert_eq!(cfg["Labels"], json!({"a": "1", "b c": "2"}));
        assert_eq!(cfg["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(cfg["StopSignal"], "SIGINT");
        assert_eq!(cfg["Volumes"], json!({"/data": {}, "/cache": {}}));
    }

    #[test]
    fn refuses_bad_instructions() {
        let mut c = json!({});
        assert!(apply(&mut c, "RUN rm -rf /").is_err());
        assert!(apply(&mut c, "EXPOSE http").is_err());
        assert!(apply(&mut c, "STOPSIGNAL SIGNOPE").is_err());
        assert!(apply(&mut c, "VOLUME relative").is_err());
        assert!(apply(&mut c, "ENV").is_err());
    }

    #[test]
    fn splits_words() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert!(split_words("\"open").is_err());
    }
}

//! Byte sizes: `--log-opt max-size=10m` parsing and podman's "1.46 MB" display.

use anyhow::{Result, bail};

/// Parses `1024`, `10k`, `10kb`, `5m`, `1.5g` (binary multiples, as podman's
/// units.RAMInBytes does).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let num_len = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    if num_len == 0 {
        bail!("invalid size {s:?}: want a number with an optional unit (k, m, g)");
    }
    let n: f64 = match t[..num_len].parse() {
        Ok(n) => n,
        Err(_) => bail!("invalid size {s:?}"),
    };
    let mult: f64 = match t[num_len..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        u => bail!("invalid size {s:?}: unknown unit {u:?}"),
    };
    Ok((n * mult) as u64)
}

/// "1.46 MB": three significant digits, decimal units, as podman prints sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{} {}", sig3(v), UNITS[i])
}

/// Formats like Go's `%.3g` for values below 1000.
fn sig3(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("10k").unwrap(), 10240);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10q").is_err());
    }

    #[test]
    fn prints_like_podman() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1_460_000), "1.46 MB");
        assert_eq!(human_size(120_000_000), "120 MB");
        assert_eq!(human_size(4_310), "4.31 kB");
        assert_eq!(human_size(1_500), "1.5 kB");
    }
}

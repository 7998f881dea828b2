//! Wall-clock times as podman prints and parses them, without a date crate:
//! RFC 3339 with nanoseconds in UTC, "3 seconds ago", and `--since` values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i128;

pub fn now_nanos() -> Nanos {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as Nanos,
        Err(e) => -(e.duration().as_nanos() as Nanos),
    }
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's civil_from_days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-05-01T12:34:56.123456789Z`
pub fn rfc3339_nanos(t: Nanos) -> String {
    let secs = t.div_euclid(1_000_000_000) as i64;
    let nanos = t.rem_euclid(1_000_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// `2024-05-01 12:34:56 +0000 UTC`, as podman's `CreatedAt` column.
pub fn human_timestamp(t: Nanos) -> String {
    let s = rfc3339_nanos(t);
    format!("{} {} +0000 UTC", &s[..10], &s[11..19])
}

/// Parses RFC 3339 (`2024-05-01T12:34:56Z`, fractional seconds and `+02:00`
/// offsets allowed, `T` or a space between date and time, time optional).
pub fn parse_rfc3339(s: &str) -> Result<Nanos> {
    let err = || format!("invalid time {s:?}: want RFC 3339 such as 2024-05-01T12:34:56Z");
    let s = s.trim();
    if s.len() < 10 {
        bail!(err());
    }
    let y: i64 = s[0..4].parse().with_context(err)?;
    let mo: u32 = s[5..7].parse().with_context(err)?;
    let d: u32 = s[8..10].parse().with_context(err)?;
    if &s[4..5] != "-" || &s[7..8] != "-" || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        bail!(err());
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos: i64 = 0;
    let rest = &s[10..];
    let rest = if rest.is_empty() {
        ""
    } else {
        let rest = rest.strip_prefix(['T', 't', ' ']).with_context(err)?;
        if rest.len() < 8 || &rest[2..3] != ":" || &rest[5..6] != ":" {
            bail!(err());
        }
        let h: i64 = rest[0..2].parse().with_context(err)?;
        let mi: i64 = rest[3..5].parse().with_context(err)?;
        let se: i64 = rest[6..8].parse().with_context(err)?;
        secs += h * 3600 + mi * 60 + se;
        let mut rest = &rest[8..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.chars().take_while(|c| c.is_ascii_digit()).count();
            let mut f = frac[..digits].to_string();
            f.truncate(9);
            while f.len() < 9 {
                f.push('0');
            }
            nanos = f.parse().with_context(err)?;
            rest = &frac[digits..];
        }
        rest
    };
    match rest {
        "" | "Z" | "z" => {}
        off if off.len() == 6 && (off.starts_with('+') || off.starts_with('-')) => {
            let h: i64 = off[1..3].parse().with_context(err)?;
            let m: i64 = off[4..6].parse().with_context(err)?;
            let delta = h * 3600 + m * 60;
            if off.starts_with('+') {
                secs -= delta;
            } else {
                secs += delta;
            }
        }
        _ => bail!(err()),
    }
    Ok(secs as Nanos * 1_000_000_000 + nanos as Nanos)
}

/// Parses a Go-style duration: `1h30m`, `10m`, `45s`, `500ms`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        bail!("invalid duration {s:?}");
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            bail!("invalid duration {s:?}: want a number and a unit such as 10m");
        }
        let n: f64 = rest[..num_len]
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            u => bail!("invalid duration {s:?}: unknown unit {u:?}"),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// A `--since`/`--until`/`until=` value: RFC 3339, Unix seconds (with optional
/// fraction), or a duration meaning that long before now.
pub fn parse_point_in_time(s: &str, now: Nanos) -> Result<Nanos> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as Nanos);
    }
    if let Ok(d) = parse_duration(s) {
        return Ok(now - d.as_nanos() as Nanos);
    }
    parse_rfc3339(s)
        .with_context(|| format!("invalid time {s:?}: want RFC 3339, Unix seconds, or a duration such as 10m"))
}

/// "3 seconds", "About a minute", "2 hours" (Docker's units::HumanDuration).
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = secs / 60;
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = (secs as f64 / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// "3 seconds ago" for a time in the past.
pub fn ago(t: Nanos, now: Nanos) -> String {
    let d = Duration::from_nanos((now - t).max(0) as u64);
    format!("{} ago", human_duration(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t: Nanos = 1_714_566_896_123_456_789;
        let s = rfc3339_nanos(t);
        assert_eq!(s, "2024-05-01T12:34:56.123456789Z");
        assert_eq!(parse_rfc3339(&s).unwrap(), t);
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn parses_offsets_and_dates() {
        let a = parse_rfc3339("2024-05-01T14:34:56+02:00").unwrap();
        let b = parse_rfc3339("2024-05-01T12:34:56Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_rfc3339("2000-03-01").unwrap(), 951_868_800 * 1_000_000_000);
        assert!(parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("10x").is_err());
        let now = 100 * 1_000_000_000;
        assert_eq!(parse_point_in_time("10s", now).unwrap(), 90 * 1_000_000_000);
        assert_eq!(parse_point_in_time("5", now).unwrap(), 5 * 1_000_000_000);
    }

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(human_duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(human_duration(Duration::from_secs(70)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 hours");
    }
}

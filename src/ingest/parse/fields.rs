//! Field access and normalisation shared by the record parsers: case-insensitive,
//! null-as-absent JSON field access, structured fields held as JSON strings, timestamps, client
//! addresses, user names and length caps.
//!
//! Guarantees: every function is total (no panic on any input) and copies at most
//! [`MAX_TEXT`] bytes per string.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

use super::{MAX_TEXT, Reject, TRUNCATED};

/// Longest timestamp string tried.
const MAX_TIME_LEN: usize = 64;

/// A JSON object with case-insensitive, null-as-absent field access.
#[derive(Clone, Copy)]
pub(super) struct Obj<'a>(pub(super) &'a Map<String, Value>);

impl<'a> Obj<'a> {
    pub(super) fn get(self, key: &str) -> Option<&'a Value> {
        let v = match self.0.get(key) {
            Some(v) => v,
            None => self
                .0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)?,
        };
        (!v.is_null()).then_some(v)
    }

    pub(super) fn has(self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(super) fn obj(self, key: &str) -> Option<Obj<'a>> {
        self.get(key).and_then(Value::as_object).map(Obj)
    }

    /// A string, number or boolean field as text.
    pub(super) fn text(self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).and_then(scalar)
    }

    pub(super) fn text_any(self, keys: &[&str]) -> Option<Cow<'a, str>> {
        keys.iter().find_map(|k| self.text(k))
    }

    pub(super) fn nonempty(self, key: &str) -> Option<Cow<'a, str>> {
        self.text(key).filter(|s| !s.trim().is_empty())
    }

    /// The first of `keys` that is present, as text; the first key names the error.
    pub(super) fn required_text(self, keys: &[&'static str]) -> Result<Cow<'a, str>, Reject> {
        for &k in keys {
            if let Some(v) = self.get(k) {
                return scalar(v).ok_or(Reject::Invalid {
                    field: k,
                    problem: "not a string",
                });
            }
        }
        Err(Reject::Missing(keys.first().copied().unwrap_or("?")))
    }
}

pub(super) fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "True" } else { "False" })),
        _ => None,
    }
}

/// A structured field: an array or object, or a string holding one.
pub(super) fn structured(v: &Value) -> Option<Cow<'_, Value>> {
    match v {
        Value::Array(_) | Value::Object(_) => Some(Cow::Borrowed(v)),
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('[') || t.starts_with('{') {
                serde_json::from_str(t).ok().map(Cow::Owned)
            } else {
                None
            }
        }
        _ => None,
    }
}

pub(super) fn value_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => cap(s),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        other => cap(&other.to_string()),
    }
}

/// The first time field of `keys` that is present: `None` if none is, else its value or why
/// it is not a time.
pub(super) fn time_field(o: Obj<'_>, keys: &[&'static str]) -> Option<Result<u64, Reject>> {
    keys.iter().find_map(|&field| {
        let v = o.get(field)?;
        Some(match v.as_str() {
            None => Err(Reject::Invalid {
                field,
                problem: "not a string",
            }),
            Some(s) => parse_time(s).ok_or(Reject::Invalid {
                field,
                problem: "not a time",
            }),
        })
    })
}

/// A timestamp as UTC microseconds since the epoch. Accepts RFC 3339 (`Z` or an offset, any
/// number of fractional digits), the same without a zone (UTC), a space instead of `T`, and
/// the US form of CSV exports (`4/26/2021, 7:17:10.000 AM`, comma optional). Times before
/// 1970 are refused.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_TIME_LEN {
        return None;
    }
    let micros = if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        dt.timestamp_micros()
    } else {
        const NAIVE: &[&str] = &[
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%m/%d/%Y, %I:%M:%S%.f %p",
            "%m/%d/%Y %I:%M:%S%.f %p",
            "%m/%d/%Y, %H:%M:%S%.f",
            "%m/%d/%Y %H:%M:%S%.f",
        ];
        NAIVE
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?
            .and_utc()
            .timestamp_micros()
    };
    u64::try_from(micros).ok()
}

/// A client address as records write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`,
/// `2001:db8::1`, `::ffff:1.2.3.4` (-> `1.2.3.4`). Empty or unreadable -> `None`.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let ip = if let Some(rest) = s.strip_prefix('[') {
        rest[..rest.find(']')?].parse::<IpAddr>().ok()?
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = s.rsplit_once(':')?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

pub(super) fn ip_any(o: Obj<'_>, keys: &[&str]) -> Option<IpAddr> {
    keys.iter().find_map(|k| parse_ip(&o.text(k)?))
}

/// Whether `s` looks like a UPN / email address.
pub(super) fn is_upn(s: &str) -> bool {
    let s = s.trim();
    s.len() <= 320
        && !s.contains(char::is_whitespace)
        && s.split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}

pub(super) fn norm_user(s: &str) -> String {
    cap(s.trim()).to_lowercase()
}

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// `s` cut to at most `max` bytes at a char boundary.
pub(super) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An owned copy of `s` cut at [`MAX_TEXT`] bytes (counted when cut).
pub(super) fn cap(s: &str) -> String {
    if s.len() > MAX_TEXT {
        TRUNCATED.fetch_add(1, Ordering::Relaxed);
    }
    cut(s, MAX_TEXT).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::test_util::*;

    #[test]
    fn times_in_every_form_are_utc_micros() {
        let t = us("2021-04-26T07:17:10Z");
        assert_eq!(parse_time("2021-04-26T07:17:10"), Some(t));
        assert_eq!(parse_time("2021-04-26T07:17:10Z"), Some(t));
        assert_eq!(parse_time("2021-04-26 07:17:10"), Some(t));
        assert_eq!(parse_time("2021-04-26T09:17:10+02:00"), Some(t));
        assert_eq!(
            parse_time("2021-04-26T07:17:10.1234567Z"),
            Some(t + 123_456)
        );
        assert_eq!(parse_time("2021-04-26T07:17:10.1234567"), Some(t + 123_456));
        assert_eq!(parse_time("4/26/2021, 7:17:10.000 AM"), Some(t));
        assert_eq!(
            parse_time("4/26/2021 7:17:10 PM"),
            Some(t + 12 * 3_600_000_000)
        );
        assert_eq!(
            parse_time(" 04/26/2021, 07:17:10.250 AM "),
            Some(t + 250_000)
        );
        for bad in [
            "",
            "yesterday",
            "2021-13-40T00:00:00",
            "1969-12-31T23:59:59Z",
            "4/26/2021",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn client_addresses_lose_ports_brackets_and_mapping() {
        assert_eq!(parse_ip("1.2.3.4:5678"), ip("1.2.3.4"));
        assert_eq!(parse_ip("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(parse_ip("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(parse_ip("::ffff:1.2.3.4"), ip("1.2.3.4"));
        assert_eq!(parse_ip("[::ffff:1.2.3.4]:80"), ip("1.2.3.4"));
        assert_eq!(parse_ip("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(parse_ip(" 67.43.156.13 "), ip("67.43.156.13"));
        for bad in [
            "",
            "  ",
            "Unknown",
            "1.2.3.4:",
            "1.2.3.4:x",
            "[2001:db8::1",
            "300.1.1.1",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
    }
}

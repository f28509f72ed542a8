//! Domain names as intelligence keys: normalisation and the registrable domain.
//!
//! A name is normalised once at the edge: lower case, no trailing dot, internationalised labels
//! converted to punycode (UTS #46 via `idna`). The registrable domain ("eTLD+1") comes from the
//! Public Suffix List compiled into the `psl` crate, so no file is read at run time. Names that
//! are not on the public internet (single labels, unknown suffixes such as `.lan`, reverse
//! lookups under `.arpa`) have no registrable domain and are ignored by the scoring.
//!
//! Nothing here panics or allocates beyond the returned string; input longer than
//! [`MAX_NAME_LEN`] is refused.

/// Longest DNS name accepted (RFC 1035: 255 octets on the wire, 253 in text).
pub const MAX_NAME_LEN: usize = 253;

/// Normalises a name as it appears in DNS, SNI or an HTTP Host header: lower case, trailing
/// dot and any `:port` suffix removed, IDN labels converted to punycode. `None` for names that
/// are empty, too long or not valid host names.
pub fn normalise(name: &str) -> Option<String> {
    let name = name.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME_LEN * 4 {
        return None;
    }
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    let out = if plain {
        name.to_ascii_lowercase()
    } else {
        // Unicode (or escaped) names: UTS #46 processing, which also lower-cases and maps.
        idna::domain_to_ascii(name).ok()?
    };
    let out = out.strip_suffix('.').map(str::to_owned).unwrap_or(out);
    let valid = !out.is_empty()
        && out.len() <= MAX_NAME_LEN
        && out
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(valid_byte));
    valid.then_some(out)
}

fn valid_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
}

/// Strips a `:port` from an HTTP Host value (`example.com:8080`, `[2001:db8::1]:80`).
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The registrable domain of a normalised name, from the Public Suffix List. `None` when the
/// name is itself a public suffix, has an unknown suffix (`.lan`, `.local`, `.internal`), is a
/// reverse-lookup name or an IP literal.
pub fn registrable(name: &str) -> Option<&str> {
    if name.ends_with(".arpa") || name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let suffix = psl::suffix(name.as_bytes())?;
    if !suffix.is_known() {
        return None;
    }
    psl::domain_str(name)
}

/// The public suffix (TLD or eTLD) of a normalised name, e.g. `life` or `co.uk`.
pub fn suffix(name: &str) -> Option<&str> {
    psl::suffix_str(name)
}

/// The label left of the public suffix (`latovafineart` for `latovafineart.life`).
pub fn registrable_label(registrable: &str) -> &str {
    registrable.split('.').next().unwrap_or(registrable)
}

/// The labels of `fqdn` left of its registrable domain (`["rz8js7sjbef"]`).
pub fn sub_labels<'a>(fqdn: &'a str, registrable: &str) -> impl Iterator<Item = &'a str> {
    let sub = fqdn
        .strip_suffix(registrable)
        .and_then(|s| s.strip_suffix('.'))
        .unwrap_or("");
    sub.split('.').filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_dot_and_idn() {
        assert_eq!(
            normalise("WWW.Example.COM.").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(normalise("bücher.de").as_deref(), Some("xn--bcher-kva.de"));
        assert_eq!(normalise("BÜCHER.de").as_deref(), Some("xn--bcher-kva.de"));
        assert_eq!(
            normalise("_ldap._tcp.dc.corp").as_deref(),
            Some("_ldap._tcp.dc.corp")
        );
        assert_eq!(normalise(""), None);
        assert_eq!(normalise("."), None);
        assert_eq!(normalise("a..b"), None);
        assert_eq!(normalise(&"a".repeat(64)), None);
        assert_eq!(normalise("bad name"), None);
        assert_eq!(normalise(&"a.".repeat(200)), None);
    }

    #[test]
    fn registrable_domain_follows_the_psl() {
        assert_eq!(
            registrable("rz8js7sjbef.latovafineart.life"),
            Some("latovafineart.life")
        );
        assert_eq!(registrable("www.bbc.co.uk"), Some("bbc.co.uk"));
        assert_eq!(registrable("foo.bar.github.io"), Some("bar.github.io"));
        assert_eq!(registrable("thecalebgroup.top"), Some("thecalebgroup.top"));
        assert_eq!(registrable("co.uk"), None);
        assert_eq!(registrable("com"), None);
        assert_eq!(registrable("printer.lan"), None);
        assert_eq!(registrable("localhost"), None);
        assert_eq!(registrable("4.3.2.1.in-addr.arpa"), None);
        assert_eq!(registrable("192.0.2.1"), None);
        assert_eq!(registrable("xn--bcher-kva.de"), Some("xn--bcher-kva.de"));
    }

    #[test]
    fn labels_and_ports() {
        assert_eq!(registrable_label("latovafineart.life"), "latovafineart");
        let subs: Vec<_> = sub_labels("a.b.example.com", "example.com").collect();
        assert_eq!(subs, ["a", "b"]);
        assert_eq!(sub_labels("example.com", "example.com").count(), 0);
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("[2001:db8::1]:80"), "2001:db8::1");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(suffix("www.bbc.co.uk"), Some("co.uk"));
    }
}

//! Tests of the HTML incident report: the reference case, hostile input, caps, odd types.

use super::time::{format_span, format_utc, parse_ts};
use super::*;
use serde_json::json;

const DEVICE: &str = "10.20.0.23";
const USER: &str = "dana.whitfield@example.com";
const C2_IP: &str = "193.222.96.91";
const VPN_IP: &str = "198.51.100.77";
const FIRST: &str = "rz8js7sjbef.latovafineart.life";
const SECOND: &str = "thecalebgroup.top";
const LINK: &str = "https://docsend.com/view/vcdmsmjcskw69jh9";

/// The account takeover of March 2024 as crosswire's incident joins it: 14 events.
fn reference_incident() -> Value {
    let breach = |ts: &str, dev: &str, domain: &str| {
        json!({"timestamp": ts, "model": "Device / Suspicious Domain", "score": 86,
               "summary": format!("{dev} -> {domain}, registered today, first seen on this network"),
               "device": dev, "domain": domain, "ip": C2_IP})
    };
    let mut events = vec![
        json!({"timestamp": "2024-03-18T13:57:40.120000+0000",
               "model": "Email / Unusual Inbound Link from Unknown Sender", "score": 64,
               "summary": "3 emails from an unknown sender via zixmail.net carrying a link",
               "device": DEVICE, "user": USER, "domain": "zixmail.net"}),
        json!({"timestamp": "2024-03-18T14:02:11.402337+0000",
               "model": "Device / Suspicious Domain", "score": 91,
               "summary": format!("{DEVICE} -> {FIRST}, registered 4 days ago, never seen here"),
               "device": {"ip": DEVICE, "hostname": "wks-023"}, "domain": FIRST, "ip": C2_IP}),
        json!({"timestamp": "2024-03-18T14:03:09+0000",
               "model": "SaaS / Access / Unusual External Source for SaaS Credential Use",
               "score": 88, "summary": "login from 193.222.96.91 (NL); seen before: US only",
               "user": USER, "ip": C2_IP}),
        json!({"timestamp": "2024-03-19T08:12:40Z",
               "model": "SaaS / Compromise / Unusual Login and Account Update", "score": 84,
               "summary": "new MFA method registered: Microsoft Authenticator (6-digit code)",
               "user": USER, "ip": C2_IP}),
        json!({"timestamp": "2024-03-20T07:58:13Z",
               "model": "SaaS / Compliance / Anomalous New Email Rule", "score": 72,
               "summary": "inbox rule \"...\": MoveToFolder RSS Feeds, MarkAsRead True, StopProcessingRules True",
               "user": USER, "ip": VPN_IP}),
        json!({"timestamp": "2024-03-20T07:58:14Z",
               "model": "SaaS / Compromise / Unusual Login and New Email Rule", "score": 90,
               "summary": "new inbox rule right after a login from a VPN address",
               "user": USER, "ip": VPN_IP}),
        json!({"timestamp": "2024-03-20T08:20:00Z",
               "model": "SaaS / Email / Unusual Outbound Volume", "score": 93,
               "summary": "2,914 emails with a DocSend link behind \"Click Here\" sent in 40 minutes",
               "user": USER, "url": LINK}),
    ];
    for (n, dev) in [
        "10.20.0.31",
        "10.20.0.44",
        "10.20.0.57",
        "10.20.0.62",
        "10.20.0.78",
    ]
    .iter()
    .enumerate()
    {
        events.push(breach(
            &format!("2024-03-20T08:{:02}:10Z", 31 + n * 4),
            dev,
            SECOND,
        ));
    }
    events.push(json!({"timestamp": "2024-03-20T08:52:00Z",
        "model": "Multiple Device Correlations / Multiple Devices Breaching Same Model",
        "score": 95, "summary": "6 devices breached Device / Suspicious Domain for thecalebgroup.top",
        "domain": SECOND, "ip": C2_IP}));
    events.push(breach("2024-03-20T09:41:00Z", DEVICE, SECOND));
    json!({
        "id": "inc-3f9c2a", "version": 14, "title": "Possible Hijack of Office365 Account",
        "severity": "high",
        "summary": format!("{DEVICE} connected to {FIRST}, registered 4 days earlier and never seen before here, hosted on {C2_IP} (NL). One minute later the Microsoft 365 account {USER} logged in from that same IP, then registered a new MFA method and created an inbox rule named \"...\" from a VPN address. The account then sent thousands of phishing emails; five more devices followed the link to {SECOND}, on the same IP."),
        "entities": {"devices": [DEVICE, "10.20.0.31", "10.20.0.44", "10.20.0.57", "10.20.0.62", "10.20.0.78"],
                     "users": [USER], "ips": [C2_IP, VPN_IP],
                     "domains": [FIRST, SECOND], "urls": [LINK]},
        "events": events,
        "actions": [format!("block {FIRST}, {SECOND} and {C2_IP}"),
                    format!("reset the password of {USER} and revoke its sessions"),
                    "remove the inbox rule named \"...\" and the new MFA method",
                    "find and recall the phishing emails sent on 20 March"],
        "bindings": [{"device_ip": DEVICE, "hostname": "wks-023", "user": USER,
                      "source": "entra-signin", "confidence": 0.9}],
        "first_ts": 1_710_770_260_120_000u64,
        "last_ts": "2024-03-20T09:41:00.000000+0000"
    })
}

/// What a tiny well-formedness checker found: tags with their attributes, decoded text.
struct Parsed {
    tags: Vec<(String, Vec<(String, String)>)>,
    text: String,
}

fn decode(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (ent, c) = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&#39;", '\''),
        ]
        .into_iter()
        .find(|(e, _)| tail.starts_with(e))
        .unwrap_or_else(|| panic!("bare & at {:?}", &tail[..tail.len().min(20)]));
        out.push(c);
        rest = &tail[ent.len()..];
    }
    out.push_str(rest);
}

/// Parses the page strictly: every tag closed in order (void elements aside), attributes
/// double-quoted, no raw `<`, `>` or bare `&` in text or values.
fn parse(html: &str) -> Parsed {
    const VOID: [&str; 3] = ["meta", "br", "hr"];
    let mut rest = html.strip_prefix("<!DOCTYPE html>").expect("doctype");
    let mut stack: Vec<String> = Vec::new();
    let mut p = Parsed {
        tags: Vec::new(),
        text: String::new(),
    };
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..lt];
        assert!(!text.contains('>'), "raw > in text {text:?}");
        decode(text, &mut p.text);
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').expect("closing tag end");
            let name = &r[..end];
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            rest = &r[end + 1..];
            continue;
        }
        let r = &rest[1..];
        let end = r
            .find(|c: char| !c.is_ascii_alphanumeric())
            .expect("tag name end");
        let name = r[..end].to_string();
        assert!(
            !name.is_empty(),
            "empty tag name near {:?}",
            &rest[..rest.len().min(40)]
        );
        let mut r = &r[end..];
        let mut attrs = Vec::new();
        let self_closed = loop {
            r = r.trim_start();
            if let Some(x) = r.strip_prefix("/>") {
                r = x;
                break true;
            }
            if let Some(x) = r.strip_prefix('>') {
                r = x;
                break false;
            }
            let eq = r.find('=').expect("attribute =");
            let attr = r[..eq].to_string();
            assert!(
                attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{attr:?}"
            );
            let v = r[eq + 1..]
                .strip_prefix('"')
                .expect("double-quoted attribute");
            let close = v.find('"').expect("attribute end");
            assert!(!v[..close].contains('<'), "raw < in attribute");
            let mut value = String::new();
            decode(&v[..close], &mut value);
            attrs.push((attr, value));
            r = &v[close + 1..];
        };
        if name == "style" {
            let end = r.find("</style>").expect("style end");
            r = &r[end + "</style>".len()..];
        } else if !self_closed && !VOID.contains(&name.as_str()) {
            stack.push(name.clone());
        }
        p.tags.push((name, attrs));
        rest = r;
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    p
}

/// The part of the page between two markers.
fn between<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
    let a = html.find(from).unwrap_or_else(|| panic!("{from} missing"));
    let b = html[a..].find(to).unwrap_or_else(|| panic!("{to} missing")) + a;
    &html[a..b]
}

/// Decoded text of the graph's node labels.
fn labels(html: &str) -> Vec<String> {
    let svg = between(html, "aria-label=\"Entity graph\"", "</svg>");
    svg.split("<text class=\"lbl\"")
        .skip(1)
        .map(|s| {
            let t = &s[s.find('>').unwrap() + 1..s.find("</text>").unwrap()];
            let mut out = String::new();
            decode(t, &mut out);
            out
        })
        .collect()
}

const TAGS: [&str; 31] = [
    "html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "span",
    "section", "p", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "footer", "svg",
    "rect", "text", "g", "path", "polygon", "circle", "br", "hr",
];
const ATTRS: [&str; 22] = [
    "lang",
    "charset",
    "name",
    "content",
    "class",
    "viewBox",
    "width",
    "height",
    "role",
    "aria-label",
    "aria-hidden",
    "preserveAspectRatio",
    "x",
    "y",
    "rx",
    "dx",
    "text-anchor",
    "d",
    "stroke-width",
    "points",
    "cx",
    "cy",
];

fn assert_only_known_markup(p: &Parsed) {
    for (tag, attrs) in &p.tags {
        assert!(TAGS.contains(&tag.as_str()), "unexpected tag <{tag}>");
        for (a, v) in attrs {
            assert!(
                a == "r" || ATTRS.contains(&a.as_str()),
                "unexpected attribute {a}"
            );
            if ![
                "class",
                "content",
                "aria-label",
                "lang",
                "charset",
                "preserveAspectRatio",
                "text-anchor",
                "role",
                "aria-hidden",
                "name",
            ]
            .contains(&a.as_str())
            {
                assert!(
                    v.chars()
                        .all(|c| c.is_ascii_digit() || " .,-MC".contains(c)),
                    "{a}={v:?} is not geometry"
                );
            }
        }
    }
}

#[test]
fn reference_incident_shows_every_entity_in_graph_and_timeline() {
    let html = render_html(&reference_incident());
    if let Ok(path) = std::env::var("CROSSWIRE_REPORT_OUT") {
        std::fs::write(path, &html).expect("write report");
    }
    let p = parse(&html);
    assert_only_known_markup(&p);
    let labels = labels(&html);
    let timeline = between(&html, "<table class=\"timeline\">", "</table>");
    for e in [DEVICE, USER, C2_IP, VPN_IP, FIRST, SECOND, "10.20.0.78"] {
        assert!(labels.iter().any(|l| l == e), "{e} not drawn: {labels:?}");
        assert!(timeline.contains(e), "{e} not in the timeline");
    }
    assert_eq!(
        timeline.matches("<tr>").count(),
        1 + 14,
        "header + 14 events"
    );
    assert!(timeline.contains("2024-03-18 14:02:11"));
    assert!(timeline.contains(LINK), "URL listed whole in the timeline");
    assert!(html.contains("<span class=\"sev sev-high\">HIGH</span>"));
    assert!(
        html.contains("2024-03-18 13:57:40 → 2024-03-20 09:41:00"),
        "time span"
    );
    assert!(html.contains("(1 d 19 h 43 m)"));
    assert!(
        p.text
            .contains("remove the inbox rule named \"...\" and the new MFA method")
    );
    assert!(
        p.text.contains("wks-023 · 3 events"),
        "device sublabel: hostname and count"
    );
    // Edges: the device to its domain, the domain to its IP, the user to the IP.
    let edges = between(&html, "<g class=\"edges\">", "</g>");
    for (a, b) in [
        (DEVICE, FIRST),
        (FIRST, C2_IP),
        (C2_IP, USER),
        (SECOND, C2_IP),
    ] {
        assert!(
            edges.contains(&format!("{a} — {b}")) || edges.contains(&format!("{b} — {a}")),
            "no edge {a} — {b}"
        );
    }
    assert!(
        edges.contains(&format!("{DEVICE} — {USER}: device–user binding")),
        "binding drawn"
    );
    assert!(
        edges.contains("class=\"edge bound\""),
        "binding drawn dashed"
    );
    // The device reaches the IP through the domain, not by a line across the domains.
    assert!(!edges.contains(&format!("{DEVICE} — {C2_IP}")));
    // Steps in time order whatever the input order.
    let at = |s: &str| timeline.find(s).unwrap();
    assert!(at("Unusual Inbound Link") < at("Credential Use"));
    assert!(at("Account Update") < at("Anomalous New Email Rule"));
}

#[test]
fn page_references_nothing_outside_itself() {
    let html = render_html(&reference_incident());
    let p = parse(&html);
    assert_only_known_markup(&p);
    for needle in [
        "href", "src=", "@import", "url(", "<script", "<link", "<img", "<iframe", "<a ",
    ] {
        assert!(!html.contains(needle), "found {needle}");
    }
    // The one URL of the case is text, never an attribute value.
    assert!(
        p.tags
            .iter()
            .all(|(_, a)| a.iter().all(|(_, v)| !v.contains("http")))
    );
    assert!(p.text.contains(LINK));
}

#[test]
fn hostile_strings_are_shown_as_text_never_as_markup() {
    let long = format!("{}.example.net", "a".repeat(480));
    let idn = "bücher-ünïcode.例え.テスト";
    let nasty = [
        "<script>alert(1)</script>",
        "\"><svg onload=alert(1)>",
        "]]><![CDATA[<b>x</b>",
        "' onmouseover='alert(1)",
        "</style><style>*{background:url(https://evil.example/x)}",
        "<!-- & &amp; &#x3c;",
        "ctl\u{0}\u{7}\u{1b}[31m\u{7f}\u{85}end",
        "gpj.\u{202E}exe.invoice",
    ];
    let all = nasty.join(" ");
    let ev = |n: usize, s: &str| {
        json!({"timestamp": 1_710_770_531_000_000u64 + n as u64, "model": s, "score": 77,
               "summary": s, "device": s, "user": s, "ip": s, "domain": s})
    };
    let mut events: Vec<Value> = nasty.iter().enumerate().map(|(n, s)| ev(n, s)).collect();
    events.push(
        json!({"timestamp": "2024-03-18T14:02:11Z", "model": "m", "device": DEVICE,
                       "domain": long, "ip": C2_IP}),
    );
    events.push(
        json!({"timestamp": "2024-03-18T14:02:12Z", "model": "m", "device": DEVICE,
                       "domain": idn}),
    );
    let inc = json!({
        "id": nasty[1], "version": 1, "title": all, "severity": nasty[0], "summary": all,
        "entities": {"devices": nasty, "users": nasty, "ips": nasty, "domains": nasty, "urls": nasty},
        "events": events, "actions": nasty,
        "bindings": [{"device_ip": nasty[1], "hostname": nasty[0], "user": nasty[2],
                      "source": nasty[3], "confidence": nasty[4]}],
    });
    let html = render_html(&inc);
    let p = parse(&html);
    assert_only_known_markup(&p);
    assert!(
        !html.contains("<script") && !html.contains("<svg onload") && !html.contains("<![CDATA[")
    );
    assert!(!html.contains("<!--"));
    assert_eq!(html.matches("<style>").count(), 1);
    assert_eq!(
        between(&html, "<style>", "</style>"),
        format!("<style>{CSS}")
    );
    // Shown literally, as the analyst needs to read them.
    assert!(p.text.contains("<script>alert(1)</script>"));
    assert!(p.text.contains("\"><svg onload=alert(1)>"));
    assert!(p.text.contains("' onmouseover='alert(1)"));
    assert!(p.text.contains("<!-- & &amp; &#x3c;"));
    // No control or bidi character survives; each is named.
    assert!(html.chars().all(|c| c == '\n' || !is_suspicious(c)));
    assert!(
        p.text
            .contains("ctl[U+0000][U+0007][U+001B][31m[U+007F][U+0085]end")
    );
    assert!(p.text.contains("gpj.[U+202E]exe.invoice"));
    // Long names: whole in the table, cut with an ellipsis in the graph.
    let timeline = between(&html, "<table class=\"timeline\">", "</table>");
    assert!(timeline.contains(&long));
    let labels = labels(&html);
    let cut = labels
        .iter()
        .find(|l| l.starts_with("aaaa"))
        .expect("long label drawn");
    assert_eq!(cut.chars().count(), MAX_LABEL_CHARS);
    assert!(cut.ends_with('…'));
    assert!(
        labels.iter().any(|l| l == idn),
        "IDN label kept as is: {labels:?}"
    );
    assert!(timeline.contains(idn));
}

#[test]
fn missing_or_wrongly_typed_fields_render_as_absent() {
    let odd = [
        json!(null),
        json!([]),
        json!("incident"),
        json!({}),
        json!({"title": 7, "severity": ["high"], "version": "4", "id": {}, "summary": null,
               "entities": 5, "actions": "block it", "bindings": {"a": 1}, "events": "x",
               "first_ts": -5, "last_ts": "yesterday"}),
        json!({"entities": {"devices": [1, null, "", "10.0.0.1"], "users": "u"},
               "events": [1, null, [], {"timestamp": {}, "score": "abc", "device": [1],
               "model": 5, "summary": ["x"]}, {"timestamp": -1, "score": f64::MAX}],
               "bindings": [5, {"device_ip": 3, "user": null}, {}]}),
    ];
    for inc in &odd {
        let html = render_html(inc);
        let p = parse(&html);
        assert_only_known_markup(&p);
        assert!(p.text.contains("Untitled incident"), "{inc}");
        assert!(p.text.contains("SEVERITY UNKNOWN") || p.text.contains("crosswire"));
    }
    let html = render_html(&odd[4]);
    assert!(html.contains("SEVERITY UNKNOWN") && html.contains("No events."));
    assert!(html.contains("Time (UTC)</span><span class=\"absent\">unknown"));
    assert!(
        !html.contains("block it"),
        "a string where a list belongs is absent"
    );
    let html = render_html(&odd[5]);
    assert!(labels(&html).contains(&"10.0.0.1".to_string()));
    assert!(
        html.contains("</svg>1.80e308</td>"),
        "a huge score stays short"
    );
    assert_eq!(
        between(&html, "<tbody>", "</tbody>")
            .matches("<tr>")
            .count(),
        2
    );
}

#[test]
fn timestamps_accept_microseconds_and_rfc3339_in_any_offset() {
    let ts = 1_710_770_531_402_337u64; // 2024-03-18T14:02:11.402337Z
    for v in [
        json!(ts),
        json!(ts.to_string()),
        json!("2024-03-18T14:02:11.402337+0000"),
        json!("2024-03-18T14:02:11.402337Z"),
        json!("2024-03-18 14:02:11.402337+00:00"),
        json!("2024-03-18T15:32:11.402337+01:30"),
        json!("2024-03-18T09:02:11.4023379-05"),
    ] {
        assert_eq!(parse_ts(&v), Some(ts), "{v}");
    }
    assert_eq!(parse_ts(&json!("2024-03-18T14:02:11Z")), Some(ts - 402_337));
    assert_eq!(
        parse_ts(&json!("2024-02-29T00:00:00Z")),
        Some(1_709_164_800_000_000)
    );
    for bad in [
        json!("2023-02-29T00:00:00Z"),
        json!("2024-03-18T24:00:00Z"),
        json!("2024-03-18T14:02:11.Z"),
        json!("2024-03-18T14:02:11+0"),
        json!("1969-12-31T23:59:59Z"),
        json!("18/03/2024"),
        json!("２０２４-03-18T14:02:11Z"),
        json!(-1),
        json!(true),
    ] {
        assert_eq!(parse_ts(&bad), None, "{bad}");
    }
    assert_eq!(format_utc(ts), "2024-03-18 14:02:11");
    assert_eq!(format_utc(0), "1970-01-01 00:00:00");
    assert_eq!(format_utc(1_709_164_800_000_000), "2024-02-29 00:00:00");
    assert_eq!(format_utc(253_402_300_799_000_000), "9999-12-31 23:59:59");
    assert!(format_utc(u64::MAX).len() > 10, "far future still formats");
    assert_eq!(format_span(90 * 1_000_000), "1 m 30 s");
    assert_eq!(
        format_span(2 * 86_400_000_000 + 3_600_000_000),
        "2 d 1 h 0 m"
    );
}

#[test]
fn report_does_not_depend_on_event_order() {
    let inc = reference_incident();
    let mut reversed = inc.clone();
    if let Some(Value::Array(events)) = reversed.get_mut("events") {
        events.reverse();
    }
    assert_eq!(render_html(&inc), render_html(&reversed));
}

#[test]
fn large_incidents_are_capped_and_say_what_they_left_out() {
    // One device in every event, 1,200 devices with one domain each.
    let events: Vec<Value> = (0..1_200u64)
        .map(|n| {
            json!({"timestamp": 1_710_770_531_000_000u64 + n * 1_000_000, "model": "Device / Suspicious Domain",
                   "score": 50, "summary": "s", "device": format!("10.1.{}.{}", n / 250, n % 250),
                   "domain": format!("d{n}.example.top"), "ip": C2_IP})
        })
        .collect();
    let html = render_html(&json!({"title": "big", "events": events}));
    parse(&html);
    let drawn = labels(&html);
    assert_eq!(
        drawn.len(),
        2 * MAX_COLUMN_NODES + 1,
        "12 devices, 12 domains, the IP"
    );
    assert!(
        drawn.contains(&C2_IP.to_string()),
        "the IP in every event is drawn"
    );
    let hidden = MAX_ENTITIES - drawn.len();
    assert!(html.contains(&format!("+{hidden} more entities not drawn")));
    assert!(html.contains(&format!("DEVICES · {MAX_COLUMN_NODES} of 1000")));
    assert!(html.contains(&format!(">+{} more</text>", 1000 - MAX_COLUMN_NODES)));
    let timeline = between(&html, "<table class=\"timeline\">", "</table>");
    assert_eq!(timeline.matches("<tr>").count(), 1 + MAX_TIMELINE_ROWS);
    assert!(html.contains(&format!(
        "+{} more events not shown",
        1_200 - MAX_TIMELINE_ROWS
    )));
    // The cap is reached after 1,000 events: 1,000 devices and 999 domains are tracked.
    assert!(html.contains(&format!("+{} more not listed", 1_000 - MAX_LISTED_PER_KIND)));
    assert!(html.contains("Report limit: 401 entities past the tracking limit dropped."));
    assert!(
        html.len() < 4 * 1024 * 1024,
        "page stays small: {}",
        html.len()
    );
}

#[test]
fn graph_draws_at_most_forty_nodes_the_busiest_of_every_kind() {
    // 15 of each kind; entity n is in n + 1 events.
    let mut events = Vec::new();
    for n in 0..15u64 {
        for k in 0..=n {
            events.push(json!({"timestamp": n * 100 + k, "model": "m",
                "device": format!("10.0.0.{n}"), "domain": format!("d{n}.example"),
                "ip": format!("192.0.2.{n}"), "user": format!("u{n}@example.com")}));
        }
    }
    let html = render_html(&json!({"events": events}));
    parse(&html);
    let drawn = labels(&html);
    assert_eq!(drawn.len(), MAX_GRAPH_NODES);
    for kind in ["DEVICES", "DOMAINS", "EXTERNAL IPS", "USERS"] {
        let heading = between(&html, &format!("{kind} · "), "</text>");
        assert!(heading.ends_with("of 15"), "{heading}");
    }
    assert!(
        drawn.contains(&"u14@example.com".to_string()),
        "busiest user drawn"
    );
    assert!(
        !drawn.contains(&"u0@example.com".to_string()),
        "quietest user left out"
    );
    assert!(html.contains(&format!(
        "+{} more entities not drawn",
        60 - MAX_GRAPH_NODES
    )));
}

#[test]
fn events_past_the_read_limit_are_counted() {
    let events: Vec<Value> = (0..MAX_EVENTS as u64 + 7)
        .map(|n| json!({"timestamp": n, "model": "m", "user": "u@example.com"}))
        .collect();
    let html = render_html(&json!({"events": events}));
    assert!(html.contains(&format!("Timeline · {} events", MAX_EVENTS + 7)));
    assert!(html.contains("Report limit: 7 events past the read limit dropped."));
    assert!(
        html.contains(&format!("{} events</title>", MAX_EVENTS)),
        "user counted once per event"
    );
}

#[test]
fn escaping_and_cutting_work_on_characters_not_bytes() {
    let mut out = String::new();
    push_text(&mut out, "a<b>&\"'c", 100);
    assert_eq!(out, "a&lt;b&gt;&amp;&quot;&#39;c");
    out.clear();
    push_text(&mut out, "ééééé", 3);
    assert_eq!(out, "ééé… [2 more characters]");
    out.clear();
    push_label(&mut out, "例え例え例え", 4);
    assert_eq!(out, "例え例…");
    out.clear();
    push_label(&mut out, "例え例え", 4);
    assert_eq!(out, "例え例え");
    out.clear();
    push_label(&mut out, "\u{0}\u{0}\u{0}\u{0}x", 30);
    assert_eq!(
        out, "[U+0000][U+0000][U+0000]…",
        "a label's width counts the [U+XXXX]"
    );
    out.clear();
    push_text(&mut out, "a\u{200B}b\u{FEFF}c\u{FFFF}", 100);
    assert_eq!(out, "a[U+200B]b[U+FEFF]c[U+FFFF]");
}

#[test]
fn severity_badge_follows_the_level() {
    for (sev, class) in [
        ("low", "sev-low"),
        ("Medium", "sev-medium"),
        ("CRITICAL", "sev-critical"),
        ("urgent", "sev-unknown"),
    ] {
        let html = render_html(&json!({"severity": sev}));
        assert!(html.contains(&format!("class=\"sev {class}\"")), "{sev}");
    }
}

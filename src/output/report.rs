//! The self-contained HTML incident report: one page an analyst opens from a ticket, offline.
//!
//! [`render_html`] turns the `incident` object of an EVE `incident` line into one HTML5 page:
//! header (title, severity, id, version, time span), key figures, the plain-English summary, the
//! recommended actions, an entity graph drawn as inline SVG, the timeline, the indicators and the
//! device-user bindings. CSS and SVG are inline; the page has no JavaScript, no link and no
//! reference to anything outside itself, and it prints cleanly.
//!
//! Guarantees:
//! - Every string of the incident is attacker-influenced (domain names, rule names, user agents).
//!   All of it is escaped for HTML text and double-quoted attributes, which is also correct inside
//!   inline SVG; control characters, Unicode bidi and invisible format characters and
//!   non-characters are shown as `[U+XXXX]`, so input can neither add markup nor reorder or hide
//!   what the analyst reads. No input string is ever placed in a tag name, attribute name, CSS,
//!   URL or numeric attribute.
//! - Missing or wrongly typed fields render as absent; no input panics, and the work is linear in
//!   the size of the input up to the caps below.
//! - Everything is bounded by a named cap: events read ([`MAX_EVENTS`]), timeline rows
//!   ([`MAX_TIMELINE_ROWS`]), distinct entities ([`MAX_ENTITIES`]), graph edges ([`MAX_EDGES`]),
//!   drawn nodes ([`MAX_GRAPH_NODES`] in all, [`MAX_COLUMN_NODES`] per kind), indicators listed
//!   per kind ([`MAX_LISTED_PER_KIND`]), actions ([`MAX_ACTIONS`]) and bindings
//!   ([`MAX_BINDINGS`]). Past a cap later items are dropped (the graph keeps the nodes in most
//!   events) and counted, and the page says how many ("+K more", "Report limit: ...").
//!   Strings are kept whole in tables up to [`MAX_TEXT_CHARS`] characters; graph labels are cut
//!   at [`MAX_LABEL_CHARS`] with an ellipsis, the full name being in the node's tooltip.
//! - Times are the incident's own record timestamps (µs since the epoch or RFC 3339), shown in
//!   UTC; the wall clock is never read, so the same incident always gives the same bytes.
//!
//! Submodules: `graph` lays out and draws the entity graph, `time` reads and formats timestamps;
//! the tests live in `tests`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use graph::Layout;
use time::{format_span, format_utc, parse_ts};

mod graph;
#[cfg(test)]
mod tests;
mod time;

/// Timeline events read from the incident; later ones are dropped and counted.
pub const MAX_EVENTS: usize = 5_000;
/// Timeline rows shown (the earliest ones).
pub const MAX_TIMELINE_ROWS: usize = 500;
/// Distinct entities (devices, users, IPs, domains, URLs) tracked for the graph and indicators.
pub const MAX_ENTITIES: usize = 2_000;
/// Distinct co-occurrence edges tracked.
pub const MAX_EDGES: usize = 10_000;
/// Nodes drawn in the entity graph; the rest are counted in a "+K more" note.
pub const MAX_GRAPH_NODES: usize = 40;
/// Nodes drawn per graph column (kind), so that no one kind crowds out the others.
pub const MAX_COLUMN_NODES: usize = 12;
/// Indicators listed per kind.
pub const MAX_LISTED_PER_KIND: usize = 200;
/// Recommended actions listed.
pub const MAX_ACTIONS: usize = 100;
/// Device-user bindings listed and drawn.
pub const MAX_BINDINGS: usize = 200;
/// Characters of one string kept in a table cell, header or list item.
pub const MAX_TEXT_CHARS: usize = 4_096;
/// Characters of the summary kept.
pub const MAX_SUMMARY_CHARS: usize = 16_384;
/// Characters of a graph label before it is cut with an ellipsis.
pub const MAX_LABEL_CHARS: usize = 30;

/// Renders the `incident` object of an EVE `incident` line as one self-contained HTML page.
pub fn render_html(incident: &Value) -> String {
    let report = Report::build(incident);
    let mut out = String::with_capacity(64 * 1024);
    report.write(&mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Model: what the page shows, read leniently from the JSON.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Device,
    Domain,
    Ip,
    User,
    Url,
}

impl Kind {
    /// Graph column, left to right: devices | domains | IPs | users. URLs are not drawn.
    fn column(self) -> Option<usize> {
        match self {
            Kind::Device => Some(0),
            Kind::Domain => Some(1),
            Kind::Ip => Some(2),
            Kind::User => Some(3),
            Kind::Url => None,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::Domain => "domain",
            Kind::Ip => "ip",
            Kind::User => "user",
            Kind::Url => "url",
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Kind::Device => "Devices",
            Kind::Domain => "Domains",
            Kind::Ip => "External IPs",
            Kind::User => "Users",
            Kind::Url => "URLs",
        }
    }

    /// Canonical form used to join the same entity named in different places.
    fn normalise(self, s: &str) -> String {
        let s = s.trim();
        match self {
            Kind::Domain => s.trim_end_matches('.').to_ascii_lowercase(),
            Kind::User => s.to_ascii_lowercase(),
            Kind::Device | Kind::Ip | Kind::Url => s.to_string(),
        }
    }
}

const GRAPH_KINDS: [Kind; 4] = [Kind::Device, Kind::Domain, Kind::Ip, Kind::User];
const LIST_KINDS: [Kind; 5] = [Kind::Device, Kind::User, Kind::Ip, Kind::Domain, Kind::Url];

/// One timeline event.
struct Row<'a> {
    ts: Option<u64>,
    /// The timestamp as given when it could not be read as a time.
    ts_raw: Option<&'a str>,
    model: Option<&'a str>,
    score: Option<f64>,
    summary: Option<&'a str>,
    /// Entities the event names, at most one per kind, the device first.
    entities: Vec<(Kind, &'a str)>,
    /// Host name of the event's device, when the event gives one.
    hostname: Option<&'a str>,
    /// Position in the input, to keep the order of equal or unreadable timestamps.
    seq: usize,
}

struct Entity {
    kind: Kind,
    name: String,
    /// Timeline events naming it.
    events: u32,
    /// Order of first mention (timeline first, in time order), for a stable layout.
    first: usize,
    hostname: Option<String>,
}

#[derive(Default, Clone, Copy)]
struct Edge {
    events: u32,
    bound: bool,
}

/// Items a cap dropped, said on the page.
#[derive(Default)]
struct Dropped {
    events: usize,
    rows: usize,
    entities: usize,
    edges: usize,
    actions: usize,
    bindings: usize,
}

struct Binding<'a> {
    device_ip: Option<&'a str>,
    hostname: Option<&'a str>,
    user: Option<&'a str>,
    source: Option<&'a str>,
    confidence: Option<String>,
}

#[derive(Default)]
struct Entities {
    index: BTreeMap<(Kind, String), usize>,
    list: Vec<Entity>,
    edges: BTreeMap<(usize, usize), Edge>,
}

impl Entities {
    /// Index of the entity, added if new; `None` past [`MAX_ENTITIES`] (counted) or when empty.
    fn id(&mut self, kind: Kind, name: &str, dropped: &mut Dropped) -> Option<usize> {
        let name = kind.normalise(name);
        if name.is_empty() {
            return None;
        }
        if let Some(&i) = self.index.get(&(kind, name.clone())) {
            return Some(i);
        }
        if self.list.len() >= MAX_ENTITIES {
            dropped.entities += 1;
            return None;
        }
        let i = self.list.len();
        self.list.push(Entity {
            kind,
            name: name.clone(),
            events: 0,
            first: i,
            hostname: None,
        });
        self.index.insert((kind, name), i);
        Some(i)
    }

    fn link(&mut self, a: usize, b: usize, bound: bool, dropped: &mut Dropped) {
        if a == b {
            return;
        }
        let key = (a.min(b), a.max(b));
        if !self.edges.contains_key(&key) && self.edges.len() >= MAX_EDGES {
            dropped.edges += 1;
            return;
        }
        let e = self.edges.entry(key).or_default();
        if bound {
            e.bound = true;
        } else {
            e.events = e.events.saturating_add(1);
        }
    }

    fn count(&self, kind: Kind) -> usize {
        self.list.iter().filter(|e| e.kind == kind).count()
    }
}

struct Report<'a> {
    id: Option<&'a str>,
    version: Option<u64>,
    title: Option<&'a str>,
    severity: Option<&'a str>,
    summary: Option<&'a str>,
    actions: Vec<&'a str>,
    rows: Vec<Row<'a>>,
    bindings: Vec<Binding<'a>>,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    entities: Entities,
    dropped: Dropped,
}

fn text_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A number, or a string that holds one.
fn number_of(v: Option<&Value>) -> Option<f64> {
    let n = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// The device of an event: a name, or an object `{ip, hostname}` as in `model_breach`.
fn device_of(ev: &Value) -> (Option<&str>, Option<&str>) {
    match ev.get("device") {
        Some(Value::String(s)) if !s.trim().is_empty() => (Some(s), None),
        Some(d @ Value::Object(_)) => {
            let host = text_of(d, "hostname");
            (text_of(d, "ip").or(host), host)
        }
        _ => (None, None),
    }
}

impl<'a> Report<'a> {
    fn build(inc: &'a Value) -> Self {
        let mut dropped = Dropped::default();
        let mut rows = Vec::new();
        let events = inc.get("events").and_then(Value::as_array);
        for (seq, ev) in events.into_iter().flatten().enumerate() {
            if rows.len() >= MAX_EVENTS {
                dropped.events += 1;
                continue;
            }
            if !ev.is_object() {
                continue;
            }
            let (device, hostname) = device_of(ev);
            let mut entities = Vec::with_capacity(5);
            if let Some(d) = device {
                entities.push((Kind::Device, d));
            }
            for (key, kind) in [
                ("domain", Kind::Domain),
                ("ip", Kind::Ip),
                ("user", Kind::User),
                ("url", Kind::Url),
            ] {
                if let Some(s) = text_of(ev, key) {
                    entities.push((kind, s));
                }
            }
            let ts_value = ev.get("timestamp");
            let ts = ts_value.and_then(parse_ts);
            rows.push(Row {
                ts,
                ts_raw: if ts.is_none() {
                    ts_value.and_then(Value::as_str)
                } else {
                    None
                },
                model: text_of(ev, "model"),
                score: number_of(ev.get("score")),
                summary: text_of(ev, "summary"),
                entities,
                hostname: hostname.filter(|&h| Some(h) != device),
                seq,
            });
        }
        rows.sort_by_key(|r| (r.ts.is_none(), r.ts, r.seq));

        let mut ents = Entities::default();
        for row in &rows {
            let mut ids: Vec<usize> = Vec::with_capacity(row.entities.len());
            for &(kind, name) in &row.entities {
                if let Some(i) = ents.id(kind, name, &mut dropped)
                    && !ids.contains(&i)
                {
                    ids.push(i);
                }
            }
            for &i in &ids {
                if let Some(e) = ents.list.get_mut(i) {
                    e.events = e.events.saturating_add(1);
                }
            }
            // An event links its entities as a chain in column order (device -> domain -> IP ->
            // user, skipping kinds it does not name): every co-occurrence stays connected
            // without lines that jump over the column in between.
            let column = |i: usize| ents.list.get(i).and_then(|e| e.kind.column());
            ids.retain(|&i| column(i).is_some());
            ids.sort_by_key(|&i| column(i));
            for pair in ids.windows(2) {
                if let [a, b] = *pair {
                    ents.link(a, b, false, &mut dropped);
                }
            }
        }
        let listed = inc.get("entities");
        for (key, kind) in [
            ("devices", Kind::Device),
            ("users", Kind::User),
            ("ips", Kind::Ip),
            ("domains", Kind::Domain),
            ("urls", Kind::Url),
        ] {
            for s in strings(listed.and_then(|e| e.get(key))) {
                ents.id(kind, s, &mut dropped);
            }
        }

        let mut bindings = Vec::new();
        let raw_bindings = inc.get("bindings").and_then(Value::as_array);
        for b in raw_bindings.into_iter().flatten() {
            if !b.is_object() {
                continue;
            }
            if bindings.len() >= MAX_BINDINGS {
                dropped.bindings += 1;
                continue;
            }
            let binding = Binding {
                device_ip: text_of(b, "device_ip"),
                hostname: text_of(b, "hostname"),
                user: text_of(b, "user"),
                source: text_of(b, "source"),
                confidence: match b.get("confidence") {
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                },
            };
            if let Some(d) = binding.device_ip {
                let dev = ents.id(Kind::Device, d, &mut dropped);
                if let (Some(dev), Some(h)) = (dev, binding.hostname)
                    && let Some(e) = ents.list.get_mut(dev)
                {
                    e.hostname.get_or_insert_with(|| h.to_string());
                }
                let user = binding
                    .user
                    .and_then(|u| ents.id(Kind::User, u, &mut dropped));
                if let (Some(dev), Some(user)) = (dev, user) {
                    ents.link(dev, user, true, &mut dropped);
                }
            }
            bindings.push(binding);
        }
        for row in &rows {
            if let (Some(h), Some(&(Kind::Device, d))) = (row.hostname, row.entities.first())
                && let Some(&i) = ents.index.get(&(Kind::Device, Kind::Device.normalise(d)))
                && let Some(e) = ents.list.get_mut(i)
            {
                e.hostname.get_or_insert_with(|| h.to_string());
            }
        }

        let mut actions = Vec::new();
        for a in strings(inc.get("actions")) {
            if actions.len() >= MAX_ACTIONS {
                dropped.actions += 1;
            } else {
                actions.push(a);
            }
        }
        dropped.rows = rows.len().saturating_sub(MAX_TIMELINE_ROWS);

        let known: Vec<u64> = rows.iter().filter_map(|r| r.ts).collect();
        let first_ts = inc
            .get("first_ts")
            .and_then(parse_ts)
            .or_else(|| known.iter().copied().min());
        let last_ts = inc
            .get("last_ts")
            .and_then(parse_ts)
            .or_else(|| known.iter().copied().max());

        Report {
            id: text_of(inc, "id"),
            version: inc.get("version").and_then(Value::as_u64),
            title: text_of(inc, "title"),
            severity: text_of(inc, "severity"),
            summary: text_of(inc, "summary"),
            actions,
            rows,
            bindings,
            first_ts,
            last_ts,
            entities: ents,
            dropped,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Escaping.

/// Characters shown as `[U+XXXX]`: they would be invalid in the markup, or could reorder or hide
/// text (bidi controls, zero-width and other invisible format characters).
fn is_suspicious(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c,
            '\u{061C}' | '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{FDD0}'..='\u{FDEF}')
        || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// Escapes one character for HTML/SVG text and double-quoted attribute values.
fn push_char(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c if is_suspicious(c) => {
            let _ = write!(out, "[U+{:04X}]", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Escaped text, cut after `max` characters with a visible note of how much was left out.
fn push_text(out: &mut String, s: &str, max: usize) {
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        push_char(out, c);
    }
    let rest = chars.count();
    if rest > 0 {
        let _ = write!(out, "… [{rest} more characters]");
    }
}

/// Escaped graph label: at most `max` characters as displayed (a `[U+XXXX]` counts for its
/// length), the last one an ellipsis when cut.
fn push_label(out: &mut String, s: &str, max: usize) {
    let width = |c: char| if is_suspicious(c) { 8 } else { 1 };
    let fits = s
        .chars()
        .try_fold(0usize, |n, c| Some(n + width(c)).filter(|&n| n <= max))
        .is_some();
    let limit = if fits { max } else { max.saturating_sub(1) };
    let mut used = 0;
    for c in s.chars() {
        used += width(c);
        if used > limit {
            break;
        }
        push_char(out, c);
    }
    if !fits {
        out.push('…');
    }
}

fn format_score(s: f64) -> String {
    if s.abs() >= 1e6 {
        format!("{s:.2e}")
    } else if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

// ---------------------------------------------------------------------------------------------
// Page.

const CSS: &str = r#"
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--soft:#f8fafc}
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
html{background:#e9eef4}
body{margin:0 auto;max-width:1240px;padding:28px 32px 36px;background:#fff;color:var(--ink);
 font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","DejaVu Sans",sans-serif}
.mono,td.t,.chip,.ids{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
header{border-bottom:3px solid var(--ink);padding-bottom:14px}
.brand{font-size:11px;font-weight:700;letter-spacing:.14em;text-transform:uppercase;color:var(--muted)}
h1{font-size:25px;line-height:1.25;margin:6px 0 10px;overflow-wrap:anywhere}
.meta{display:flex;flex-wrap:wrap;align-items:center;gap:6px 20px;font-size:13px;color:#334155}
.meta .k{color:var(--muted);margin-right:4px}
.sev{display:inline-block;padding:3px 11px;border-radius:4px;color:#fff;font-weight:700;font-size:12px;letter-spacing:.08em}
.sev-low{background:#0369a1}.sev-medium{background:#b45309}.sev-high{background:#c2410c}
.sev-critical{background:#991b1b}.sev-unknown{background:#64748b}
h2{font-size:12.5px;font-weight:700;text-transform:uppercase;letter-spacing:.09em;color:#334155;
 margin:26px 0 10px;padding-bottom:5px;border-bottom:1px solid var(--line)}
.stats{display:grid;grid-template-columns:repeat(5,1fr);gap:10px;margin-top:18px}
.stat{border:1px solid var(--line);border-left:4px solid #94a3b8;border-radius:5px;padding:7px 12px;background:var(--soft)}
.stat .n{font-size:22px;font-weight:700;line-height:1.2}
.stat .l{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.07em}
.stat.device{border-left-color:#2563eb}.stat.domain{border-left-color:#ea580c}
.stat.ip{border-left-color:#7c3aed}.stat.user{border-left-color:#059669}
.summary{margin:0;font-size:15px;line-height:1.6;white-space:pre-line;overflow-wrap:anywhere}
ol.actions{margin:0;padding-left:24px}
ol.actions li{margin:4px 0;padding-left:4px;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;font-size:12.5px}
th{text-align:left;font-size:10.5px;font-weight:700;text-transform:uppercase;letter-spacing:.06em;
 color:#475569;background:var(--soft);border-bottom:1px solid #cbd5e1;padding:6px 8px}
td{padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
tbody tr:nth-child(even) td{background:#fbfcfe}
td.t{white-space:nowrap;font-size:12px;color:#334155}
td.n{text-align:right;color:var(--muted);white-space:nowrap}
td.s{white-space:nowrap}
td.s svg{vertical-align:middle;margin-right:6px}
table.timeline{table-layout:fixed}
.timeline th:nth-child(1){width:3.5%}.timeline th:nth-child(2){width:14%}
.timeline th:nth-child(3){width:20%}.timeline th:nth-child(4){width:9.5%}
.timeline th:nth-child(6){width:24%}
.indicators th:nth-child(1){width:10%}.indicators th:nth-child(3){width:8%}
.chip{display:inline-block;max-width:100%;margin:1px 4px 2px 0;padding:0 6px;border:1px solid;border-radius:3px;
 font-size:11.5px;line-height:1.6;overflow-wrap:anywhere}
.chip.device{color:#1d4ed8;border-color:#bfdbfe;background:#eff6ff}
.chip.domain{color:#c2410c;border-color:#fed7aa;background:#fff7ed}
.chip.ip{color:#6d28d9;border-color:#ddd6fe;background:#f5f3ff}
.chip.user{color:#047857;border-color:#a7f3d0;background:#ecfdf5}
.chip.url{color:#334155;border-color:#cbd5e1;background:#f1f5f9}
.absent{color:#94a3b8}
.graph{border:1px solid var(--line);border-radius:6px;padding:4px}
.graph svg{display:block;width:100%;height:auto}
.caption{margin:6px 2px 0;font-size:12px;color:var(--muted)}
.bar-bg{fill:#e2e8f0}.bar-hi{fill:#dc2626}.bar-mid{fill:#f59e0b}.bar-lo{fill:#64748b}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,"DejaVu Sans",sans-serif}
.colh{font-size:11.5px;font-weight:700;letter-spacing:.08em;fill:#475569}
.lbl{font-size:12.5px;fill:#0f172a}
.sub{font-size:10.5px;fill:#64748b}
.lbl,.sub{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.more{font-size:12px;fill:#64748b;font-style:italic}
.edge{fill:none;stroke:#94a3b8;stroke-opacity:.85}
.edge.bound{stroke:#059669;stroke-dasharray:5 4}
.node{stroke:#fff;stroke-width:2}
.node.device{fill:#2563eb}.node.domain{fill:#ea580c}.node.ip{fill:#7c3aed}.node.user{fill:#059669}
.colbg{fill:#f8fafc}
footer{margin-top:30px;padding-top:10px;border-top:1px solid var(--line);font-size:11.5px;color:var(--muted)}
@media print{
 html{background:#fff}
 body{max-width:none;padding:0;font-size:11px}
 table{font-size:10.5px}
 .chip{font-size:9.5px}
 td.t{white-space:normal;font-size:10px}
 td.s svg{width:36px}
 .timeline th:nth-child(1){width:4.5%}.timeline th:nth-child(2){width:11%}
 .timeline th:nth-child(3){width:19%}.timeline th:nth-child(4){width:11%}
 .graph,.stats,tr,li{break-inside:avoid}
 h2{break-after:avoid}
 thead{display:table-header-group}
}
@page{margin:12mm}
"#;

impl Report<'_> {
    fn write(&self, out: &mut String) {
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        out.push_str("<title>");
        out.push_str("Incident ");
        push_text(out, self.id.unwrap_or("(no id)"), MAX_TEXT_CHARS);
        out.push_str(": ");
        push_text(
            out,
            self.title.unwrap_or("Untitled incident"),
            MAX_TEXT_CHARS,
        );
        out.push_str("</title>\n<style>");
        out.push_str(CSS);
        out.push_str("</style>\n</head>\n<body>\n");
        self.write_header(out);
        self.write_stats(out);
        self.write_summary(out);
        self.write_actions(out);
        self.write_graph(out);
        self.write_timeline(out);
        self.write_indicators(out);
        self.write_bindings(out);
        self.write_footer(out);
        out.push_str("</body>\n</html>\n");
    }

    fn write_header(&self, out: &mut String) {
        out.push_str("<header>\n<div class=\"brand\">crosswire · incident report</div>\n<h1>");
        push_text(
            out,
            self.title.unwrap_or("Untitled incident"),
            MAX_TEXT_CHARS,
        );
        out.push_str("</h1>\n<div class=\"meta\">");
        let severity = self.severity.map(|s| s.trim().to_ascii_lowercase());
        match severity.as_deref() {
            Some(s @ ("low" | "medium" | "high" | "critical")) => {
                let _ = write!(
                    out,
                    "<span class=\"sev sev-{s}\">{}</span>",
                    s.to_ascii_uppercase()
                );
            }
            _ => {
                out.push_str("<span class=\"sev sev-unknown\">");
                push_label(out, self.severity.unwrap_or("SEVERITY UNKNOWN"), 24);
                out.push_str("</span>");
            }
        }
        out.push_str("<span><span class=\"k\">ID</span><span class=\"ids\">");
        match self.id {
            Some(id) => push_text(out, id, MAX_TEXT_CHARS),
            None => out.push_str("<span class=\"absent\">none</span>"),
        }
        out.push_str("</span></span>");
        if let Some(v) = self.version {
            let _ = write!(
                out,
                "<span><span class=\"k\">Version</span><span class=\"ids\">{v}</span></span>"
            );
        }
        out.push_str("<span><span class=\"k\">Time (UTC)</span>");
        match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) if b > a => {
                let _ = write!(
                    out,
                    "{} → {} <span class=\"k\">({})</span>",
                    format_utc(a),
                    format_utc(b),
                    format_span(b - a)
                );
            }
            (Some(a), _) | (None, Some(a)) => out.push_str(&format_utc(a)),
            (None, None) => out.push_str("<span class=\"absent\">unknown</span>"),
        }
        out.push_str("</span></div>\n</header>\n");
    }

    fn write_stats(&self, out: &mut String) {
        out.push_str("<div class=\"stats\">");
        let _ = write!(
            out,
            "<div class=\"stat\"><div class=\"n\">{}</div><div class=\"l\">Events</div></div>",
            self.rows.len() + self.dropped.events
        );
        for kind in GRAPH_KINDS {
            let _ = write!(
                out,
                "<div class=\"stat {}\"><div class=\"n\">{}</div><div class=\"l\">{}</div></div>",
                kind.class(),
                self.entities.count(kind),
                kind.heading()
            );
        }
        out.push_str("</div>\n");
    }

    fn write_summary(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Summary</h2>\n<p class=\"summary\">");
        match self.summary {
            Some(s) => push_text(out, s.trim(), MAX_SUMMARY_CHARS),
            None => out.push_str("<span class=\"absent\">No summary.</span>"),
        }
        out.push_str("</p>\n</section>\n");
    }

    fn write_actions(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Recommended actions</h2>\n");
        if self.actions.is_empty() {
            out.push_str("<p class=\"absent\">None recommended.</p>\n");
        } else {
            out.push_str("<ol class=\"actions\">\n");
            for a in &self.actions {
                out.push_str("<li>");
                push_text(out, a, MAX_TEXT_CHARS);
                out.push_str("</li>\n");
            }
            out.push_str("</ol>\n");
            if self.dropped.actions > 0 {
                let _ = writeln!(
                    out,
                    "<p class=\"caption\">+{} more actions not listed.</p>",
                    self.dropped.actions
                );
            }
        }
        out.push_str("</section>\n");
    }

    fn write_timeline(&self, out: &mut String) {
        let _ = write!(
            out,
            "<section>\n<h2>Timeline · {} events</h2>\n",
            self.rows.len() + self.dropped.events
        );
        if self.rows.is_empty() {
            out.push_str("<p class=\"absent\">No events.</p>\n</section>\n");
            return;
        }
        out.push_str(
            "<table class=\"timeline\">\n<thead><tr><th>#</th><th>Time (UTC)</th><th>Model</th>\
             <th>Score</th><th>What happened</th><th>Entities</th></tr></thead>\n<tbody>\n",
        );
        for (n, row) in self.rows.iter().take(MAX_TIMELINE_ROWS).enumerate() {
            let _ = write!(out, "<tr><td class=\"n\">{}</td><td class=\"t\">", n + 1);
            match (row.ts, row.ts_raw) {
                (Some(ts), _) => out.push_str(&format_utc(ts)),
                (None, Some(raw)) => push_text(out, raw, 64),
                (None, None) => out.push_str("<span class=\"absent\">unknown</span>"),
            }
            out.push_str("</td><td class=\"m\">");
            opt_text(out, row.model);
            out.push_str("</td><td class=\"s\">");
            match row.score {
                Some(s) => {
                    let width = s.clamp(0.0, 100.0);
                    let class = if s >= 80.0 {
                        "bar-hi"
                    } else if s >= 50.0 {
                        "bar-mid"
                    } else {
                        "bar-lo"
                    };
                    let _ = write!(
                        out,
                        "<svg width=\"60\" height=\"8\" viewBox=\"0 0 100 8\" \
                         preserveAspectRatio=\"none\" aria-hidden=\"true\">\
                         <rect class=\"bar-bg\" width=\"100\" height=\"8\" rx=\"2\"/>\
                         <rect class=\"{class}\" width=\"{width:.1}\" height=\"8\" rx=\"2\"/></svg>{}",
                        format_score(s)
                    );
                }
                None => out.push_str("<span class=\"absent\">—</span>"),
            }
            out.push_str("</td><td>");
            opt_text(out, row.summary);
            out.push_str("</td><td class=\"e\">");
            for &(kind, name) in &row.entities {
                chip(out, kind, name);
            }
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        let hidden = self.dropped.rows + self.dropped.events;
        if hidden > 0 {
            let _ = writeln!(
                out,
                "<p class=\"caption\">+{hidden} more events not shown (the earliest {} are listed).</p>",
                self.rows.len().min(MAX_TIMELINE_ROWS)
            );
        }
        out.push_str("</section>\n");
    }

    fn write_indicators(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Indicators</h2>\n");
        if self.entities.list.is_empty() {
            out.push_str("<p class=\"absent\">No entities.</p>\n</section>\n");
            return;
        }
        out.push_str(
            "<table class=\"indicators\">\n<thead><tr><th>Kind</th><th>Value</th>\
             <th>Events</th></tr></thead>\n<tbody>\n",
        );
        for kind in LIST_KINDS {
            let mut of_kind: Vec<&Entity> = self
                .entities
                .list
                .iter()
                .filter(|e| e.kind == kind)
                .collect();
            of_kind.sort_by(|a, b| b.events.cmp(&a.events).then(a.first.cmp(&b.first)));
            for e in of_kind.iter().take(MAX_LISTED_PER_KIND) {
                let _ = write!(out, "<tr><td>{}</td><td>", kind.class());
                chip(out, kind, &e.name);
                if let Some(h) = &e.hostname {
                    out.push_str(" <span class=\"absent\">");
                    push_text(out, h, MAX_TEXT_CHARS);
                    out.push_str("</span>");
                }
                let _ = writeln!(out, "</td><td class=\"n\">{}</td></tr>", e.events);
            }
            if of_kind.len() > MAX_LISTED_PER_KIND {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td class=\"absent\">+{} more not listed</td><td></td></tr>",
                    kind.class(),
                    of_kind.len() - MAX_LISTED_PER_KIND
                );
            }
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn write_bindings(&self, out: &mut String) {
        if self.bindings.is_empty() {
            return;
        }
        out.push_str(
            "<section>\n<h2>Device–user bindings</h2>\n<table class=\"bindings\">\n<thead><tr>\
             <th>Device</th><th>Hostname</th><th>User</th><th>Source</th><th>Confidence</th>\
             </tr></thead>\n<tbody>\n",
        );
        for b in &self.bindings {
            out.push_str("<tr><td class=\"mono\">");
            opt_text(out, b.device_ip);
            out.push_str("</td><td class=\"mono\">");
            opt_text(out, b.hostname);
            out.push_str("</td><td class=\"mono\">");
            opt_text(out, b.user);
            out.push_str("</td><td>");
            opt_text(out, b.source);
            out.push_str("</td><td>");
            opt_text(out, b.confidence.as_deref());
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        if self.dropped.bindings > 0 {
            let _ = writeln!(
                out,
                "<p class=\"caption\">+{} more bindings not listed.</p>",
                self.dropped.bindings
            );
        }
        out.push_str("</section>\n");
    }

    fn write_footer(&self, out: &mut String) {
        out.push_str("<footer>Generated by crosswire from incident <span class=\"ids\">");
        push_text(out, self.id.unwrap_or("(no id)"), MAX_TEXT_CHARS);
        out.push_str("</span>");
        if let Some(v) = self.version {
            let _ = write!(out, " version {v}");
        }
        out.push_str(
            ". Names, rules and summaries are shown as observed and may be attacker-controlled; \
             nothing on this page is a live link. Characters that could hide or reorder text are \
             shown as [U+XXXX].",
        );
        let d = &self.dropped;
        let limits = [
            (d.events, "events past the read limit"),
            (d.entities, "entities past the tracking limit"),
            (d.edges, "graph links past the tracking limit"),
        ];
        for (n, what) in limits {
            if n > 0 {
                let _ = write!(out, " Report limit: {n} {what} dropped.");
            }
        }
        out.push_str("</footer>\n");
    }

    fn write_graph(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Entity graph</h2>\n");
        let layout = Layout::new(&self.entities);
        if layout.placed.is_empty() {
            out.push_str("<p class=\"absent\">No entities to draw.</p>\n</section>\n");
            return;
        }
        out.push_str("<div class=\"graph\">\n");
        layout.write_svg(&self.entities, out);
        out.push_str("</div>\n<p class=\"caption\">");
        if layout.hidden > 0 {
            let _ = write!(
                out,
                "+{} more entities not drawn (those in the fewest events); all are listed under \
                 Indicators. ",
                layout.hidden
            );
        }
        out.push_str(
            "Lines join entities named in the same timeline event, \
             in the order device, domain, IP, user; thicker lines mean more events. Dashed green lines are device–user bindings. \
             Hover a node or line for its full name.</p>\n</section>\n",
        );
    }
}

fn opt_text(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_text(out, s, MAX_TEXT_CHARS),
        None => out.push_str("<span class=\"absent\">—</span>"),
    }
}

fn chip(out: &mut String, kind: Kind, name: &str) {
    let _ = write!(out, "<span class=\"chip {}\">", kind.class());
    push_text(out, name, MAX_TEXT_CHARS);
    out.push_str("</span>");
}

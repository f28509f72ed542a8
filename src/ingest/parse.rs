//! Raw Microsoft 365 / Entra ID / Defender for Office 365 records -> normalised [`Record`]s.
//!
//! Job: recognise what a raw record is ([`classify`]) and turn it into the normalised shape of
//! [`crate::ingest::record`], following the rules written there (lower-case UPN, plain IP, UTC µs).
//! Shapes understood:
//! - Management Activity API / Unified Audit Log records, including Sentinel `OfficeActivity`
//!   rows and the `AuditData` column of audit-search CSV exports;
//! - Entra ID `SigninLogs` and `AuditLogs`, in Graph (`createdDateTime`, `activityDisplayName`),
//!   Log Analytics (`TimeGenerated`, `ResultType`, `LocationDetails`) and Azure Monitor / Event
//!   Hub (`{"category": .., "properties": {..}}`) shapes;
//! - Defender for Office 365 Advanced Hunting `EmailEvents`, `EmailUrlInfo` and
//!   `UrlClickEvents` rows, flat or wrapped; `EmailAttachmentInfo`, `EmailPostDeliveryEvents`
//!   and every other wrapped table are known and ignored ([`Outcome::Ignored`]);
//! - Exchange Online message trace rows;
//! - containers: a JSON array, `{"records": [..]}` (Event Hub), `{"value": [..]}` (Graph
//!   pages), `{"events": [{"o365audit": {..}, "event": {"original": ".."}}]}` test documents.
//!
//! Field names are matched case-insensitively (Graph writes `ipAddress`, Log Analytics
//! `IPAddress`) and numbers may arrive as strings (`"RecordType": "15"`). Structured fields
//! (`Parameters`, `ModifiedProperties`, `Actor`, `LocationDetails`, ...) may be JSON values or
//! strings holding JSON, as CSV exports and some pipelines write them.
//!
//! Decisions a reader must know:
//! - Login success comes from the error code only (`ErrorNumber`/`LogonError`, `status.errorCode`,
//!   `ResultType`); an STS `ResultStatus` of "Succeeded" means nothing.
//! - A change that the record says failed (`ResultStatus` False/Failed, Entra `result` failure)
//!   is reported as [`SaasKind::Other`], not as a rule, forwarding or MFA change.
//! - `UpdateInboxRules` (Outlook client rules) keeps `Parameters` and `OperationProperties`
//!   pairs (`RuleName`, `RuleActions`, `RuleCondition`, ...); its name is `Name`, else
//!   `RuleName`, else the tail of `ObjectId`.
//! - `Update user.` is an MFA change when its `StrongAuthenticationMethod` list grew or gained a
//!   method type (or its `StrongAuthenticationPhoneAppDetail` list grew); otherwise `Other`.
//! - An Entra audit record with no user in it (app and group management) is ignored.
//!
//! Limits: a line is at most [`MAX_LINE`] bytes; containers nest at most [`MAX_NESTING`] deep;
//! a CSV row has at most [`MAX_COLUMNS`] columns; every string copied into a record is cut at
//! [`MAX_TEXT`] bytes and a record keeps at most [`MAX_PARAMS`] parameters (cuts are counted by
//! [`truncations`]).
//!
//! Layout: this file holds the entry points, shape recognition, containers and CSV rows;
//! `ual`, `entra` and `email` parse one schema family each, `fields` holds field access and
//! normalisation (times, addresses, users, caps), `lines` cuts byte streams into lines.
//!
//! Guarantees: no input panics or runs without bound. Every loop walks a slice or an already
//! parsed JSON value once; serde_json caps JSON nesting at 128; memory is bounded by the input
//! size. A raw record that is not understood becomes a [`Reject`] with a human reason.

mod email;
mod entra;
mod fields;
mod lines;
mod ual;

use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::ingest::record::{Record, SaasEvent, SaasKind, Schema};
use fields::{Obj, cap, cut};

pub use email::url_host;
pub use fields::{parse_ip, parse_time};
pub(crate) use lines::{LineSplitter, Piece};
pub use ual::split_params;

/// Longest line (or CSV row) accepted, in bytes.
pub const MAX_LINE: usize = 10 * 1024 * 1024;
/// Longest string copied into a record, in bytes (longer ones are cut at a char boundary).
pub const MAX_TEXT: usize = 8 * 1024;
/// Most parameters (and list entries examined) kept per record.
pub const MAX_PARAMS: usize = 128;
/// Deepest nesting of containers (arrays of wrappers of arrays ...).
pub const MAX_NESTING: usize = 4;
/// Most CSV columns read per row.
pub const MAX_COLUMNS: usize = 1024;
/// Keys listed in an "unknown record shape" reason.
const KEYS_SHOWN: usize = 8;

static TRUNCATED: AtomicU64 = AtomicU64::new(0);

/// Strings cut at [`MAX_TEXT`] and lists cut at [`MAX_PARAMS`] since the process started.
pub fn truncations() -> u64 {
    TRUNCATED.load(Ordering::Relaxed)
}

/// Why a raw record (or line, or row) was not turned into records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Not JSON (or cut short); serde_json's message without its position.
    #[error("invalid JSON at {}: {msg}", position(*line, *column))]
    Json {
        line: usize,
        column: usize,
        msg: String,
    },
    /// A line or CSV row longer than [`MAX_LINE`].
    #[error("line longer than 10 MiB")]
    TooLong,
    /// A JSON document longer than the reader's limit (in bytes).
    #[error("JSON document longer than {} MiB", .0 / (1024 * 1024))]
    DocumentTooLong(usize),
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field of the wrong type or with an unreadable value.
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    /// Not a record shape this module knows (what it was, or its first keys).
    #[error("unknown record shape ({0})")]
    UnknownShape(String),
    #[error("containers nested deeper than {MAX_NESTING}")]
    TooDeep,
    #[error("CSV: {0}")]
    Csv(String),
    /// A rejection inside an embedded record (`AuditData`, `event.original`).
    #[error("{context}: {inner}")]
    In {
        context: &'static str,
        inner: Box<Reject>,
    },
    /// A rejection of one element of a container.
    #[error("element {index}: {inner}")]
    Element { index: usize, inner: Box<Reject> },
}

fn position(line: usize, column: usize) -> String {
    if line <= 1 {
        format!("column {column}")
    } else {
        format!("line {line} column {column}")
    }
}

impl Reject {
    /// A serde_json error, without serde's own position suffix.
    pub fn json(e: &serde_json::Error) -> Reject {
        let full = e.to_string();
        let msg = match full.rfind(" at line ") {
            Some(i) => full[..i].to_owned(),
            None => full,
        };
        Reject::Json {
            line: e.line(),
            column: e.column(),
            msg,
        }
    }

    fn within(self, context: &'static str) -> Reject {
        Reject::In {
            context,
            inner: Box::new(self),
        }
    }
}

/// What one raw record became.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Record(Box<Record>),
    /// A known record shape that carries nothing the models use (the table or shape name).
    Ignored(String),
}

/// What a raw JSON value is, as far as the parsers are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A container of records (array, `records`/`value`/`events` list, test wrapper element,
    /// `AuditData` column).
    Container,
    /// One record of this schema (possibly inside an Azure Monitor wrapper).
    Record(Schema),
    /// A known shape or table that is ignored (its name).
    Ignored(String),
    Unknown,
}

/// Classifies a raw value without parsing it further.
pub fn classify(v: &Value) -> Shape {
    match v {
        Value::Array(_) => Shape::Container,
        Value::Object(m) => resolve(Obj(m)).shape,
        _ => Shape::Unknown,
    }
}

/// Parses one raw value (a record or a container of records). A known but irrelevant record
/// gives `Ok(vec![])`. A container fails as a whole with its first rejected element; use
/// [`visit`] to keep the good elements and see every rejection.
pub fn parse_value(v: &Value) -> Result<Vec<Record>, Reject> {
    let mut out = Vec::new();
    let mut first_err = None;
    visit(v, &mut |r| match r {
        Ok(Outcome::Record(rec)) => out.push(*rec),
        Ok(Outcome::Ignored(_)) => {}
        Err(e) => {
            if first_err.is_none() {
                first_err = Some(e);
            }
        }
    });
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Parses one NDJSON line (a record, or a JSON array of records); see [`parse_value`].
pub fn parse_line(line: &[u8]) -> Result<Vec<Record>, Reject> {
    let v = line_value(line)?;
    parse_value(&v)
}

/// Calls `f` once per raw record found in `v`, in order.
pub fn visit(v: &Value, f: &mut dyn FnMut(Result<Outcome, Reject>)) {
    visit_at(v, 0, f);
}

/// [`visit`] over one NDJSON line; an unparseable line is one rejection.
pub fn visit_line(line: &[u8], f: &mut dyn FnMut(Result<Outcome, Reject>)) {
    match line_value(line) {
        Ok(v) => visit(&v, f),
        Err(e) => f(Err(e)),
    }
}

fn line_value(line: &[u8]) -> Result<Value, Reject> {
    if line.len() > MAX_LINE {
        return Err(Reject::TooLong);
    }
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    serde_json::from_slice(line).map_err(|e| Reject::json(&e))
}

fn visit_at(v: &Value, depth: usize, f: &mut dyn FnMut(Result<Outcome, Reject>)) {
    if depth > MAX_NESTING {
        f(Err(Reject::TooDeep));
        return;
    }
    let m = match v {
        Value::Array(items) => return visit_items(items, depth, f),
        Value::Object(m) => m,
        other => return f(Err(Reject::UnknownShape(kind_name(other).to_owned()))),
    };
    let o = Obj(m);
    let r = resolve(o);
    match r.shape {
        Shape::Container => visit_container(o, depth, f),
        Shape::Record(schema) => f(parse_record(schema, r.row, r.outer)),
        Shape::Ignored(what) => f(Ok(Outcome::Ignored(what))),
        Shape::Unknown => f(Err(Reject::UnknownShape(keys_of(r.row)))),
    }
}

fn visit_items(items: &[Value], depth: usize, f: &mut dyn FnMut(Result<Outcome, Reject>)) {
    for (index, item) in items.iter().enumerate() {
        visit_at(item, depth + 1, &mut |r| {
            f(r.map_err(|e| Reject::Element {
                index,
                inner: Box::new(e),
            }))
        });
    }
}

fn visit_container(o: Obj<'_>, depth: usize, f: &mut dyn FnMut(Result<Outcome, Reject>)) {
    for key in ["records", "value", "events"] {
        if let Some(Value::Array(items)) = o.get(key) {
            return visit_items(items, depth, f);
        }
    }
    if let Some(inner) = o.get("o365audit") {
        return visit_at(inner, depth + 1, f);
    }
    if let Some(audit) = o.get("AuditData") {
        return visit_embedded(audit, "AuditData", depth, f);
    }
    if let Some(original) = o.obj("event").and_then(|e| e.get("original")) {
        return visit_embedded(original, "event.original", depth, f);
    }
    f(Err(Reject::UnknownShape(keys_of(o))));
}

/// A record held as a JSON value or as a string of JSON.
fn visit_embedded(
    v: &Value,
    context: &'static str,
    depth: usize,
    f: &mut dyn FnMut(Result<Outcome, Reject>),
) {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(inner) => visit_at(&inner, depth + 1, &mut |r| {
                f(r.map_err(|e| e.within(context)))
            }),
            Err(e) => f(Err(Reject::json(&e).within(context))),
        },
        other => visit_at(other, depth + 1, &mut |r| {
            f(r.map_err(|e| e.within(context)))
        }),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn keys_of(o: Obj<'_>) -> String {
    if o.0.is_empty() {
        return "no keys".to_owned();
    }
    let mut s = String::from("keys: ");
    for (i, k) in o.0.keys().take(KEYS_SHOWN).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(cut(k, 40));
    }
    if o.0.len() > KEYS_SHOWN {
        s.push_str(&format!(", ... ({} in all)", o.0.len()));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Shape recognition

struct Resolved<'a> {
    shape: Shape,
    /// The record's own fields.
    row: Obj<'a>,
    /// The Azure Monitor envelope around `row`, when there is one.
    outer: Option<Obj<'a>>,
}

fn resolve(o: Obj<'_>) -> Resolved<'_> {
    if let (Some(cat), Some(Value::Object(props))) = (o.text("category"), o.get("properties")) {
        let shape = table_shape(&cat).unwrap_or_else(|| Shape::Ignored(cap(&cat)));
        return Resolved {
            shape,
            row: Obj(props),
            outer: Some(o),
        };
    }
    let shape = if is_container(o) {
        Shape::Container
    } else if let Some(s) = o.text("Type").and_then(|t| table_shape(&t)) {
        s
    } else {
        signature(o)
    };
    Resolved {
        shape,
        row: o,
        outer: None,
    }
}

/// A table or category name -> shape; `None` when the name is not known at all.
fn table_shape(name: &str) -> Option<Shape> {
    let table = name.strip_prefix("AdvancedHunting-").unwrap_or(name);
    let is = |s: &str| table.eq_ignore_ascii_case(s);
    let shape = if is("SignInLogs")
        || is("NonInteractiveUserSignInLogs")
        || is("AADNonInteractiveUserSignInLogs")
    {
        Shape::Record(Schema::EntraSignin)
    } else if is("AuditLogs") {
        Shape::Record(Schema::EntraAudit)
    } else if is("OfficeActivity") {
        Shape::Record(Schema::Ual)
    } else if is("EmailEvents") {
        Shape::Record(Schema::EmailEvents)
    } else if is("EmailUrlInfo") {
        Shape::Record(Schema::EmailUrlInfo)
    } else if is("UrlClickEvents") {
        Shape::Record(Schema::UrlClickEvents)
    } else if [
        "EmailAttachmentInfo",
        "EmailPostDeliveryEvents",
        "ServicePrincipalSignInLogs",
        "ManagedIdentitySignInLogs",
        "AADServicePrincipalSignInLogs",
        "AADManagedIdentitySignInLogs",
        "ProvisioningLogs",
    ]
    .iter()
    .any(|s| is(s))
    {
        Shape::Ignored(table.to_owned())
    } else if name.len() != table.len() {
        // Another Advanced Hunting table (DeviceEvents, IdentityLogonEvents, ...).
        Shape::Ignored(cap(table))
    } else {
        return None;
    };
    Some(shape)
}

fn is_container(o: Obj<'_>) -> bool {
    ["records", "value", "events"]
        .iter()
        .any(|k| matches!(o.get(k), Some(Value::Array(_))))
        || matches!(o.get("o365audit"), Some(Value::Object(_)))
        || o.has("AuditData")
        || o.obj("event").is_some_and(|e| e.has("original"))
}

/// Recognises a flat record by the fields only its schema has.
fn signature(o: Obj<'_>) -> Shape {
    let has = |k: &str| o.has(k);
    if (has("Operation") || has("Operations"))
        && (has("CreationTime")
            || has("RecordType")
            || has("UserKey")
            || has("Workload")
            || has("OfficeWorkload")
            || has("UserId"))
    {
        return Shape::Record(Schema::Ual);
    }
    if has("activityDisplayName")
        && (has("activityDateTime") || has("targetResources") || has("initiatedBy"))
    {
        return Shape::Record(Schema::EntraAudit);
    }
    if has("OperationName") && has("TargetResources") && has("InitiatedBy") {
        return Shape::Record(Schema::EntraAudit);
    }
    if has("userPrincipalName")
        && (has("createdDateTime") || has("TimeGenerated"))
        && (has("status") || has("ResultType"))
    {
        return Shape::Record(Schema::EntraSignin);
    }
    if has("MessageTraceId") || (has("Received") && has("SenderAddress") && has("RecipientAddress"))
    {
        return Shape::Record(Schema::MessageTrace);
    }
    if has("Timestamp") || has("NetworkMessageId") {
        if has("EmailDirection") || has("DeliveryAction") {
            return Shape::Record(Schema::EmailEvents);
        }
        if has("AccountUpn") || has("IsClickedThrough") {
            return Shape::Record(Schema::UrlClickEvents);
        }
        if has("Url") && (has("UrlDomain") || has("UrlLocation")) {
            return Shape::Record(Schema::EmailUrlInfo);
        }
        if has("SHA256") || has("FileName") {
            return Shape::Ignored("EmailAttachmentInfo".to_owned());
        }
        if has("ActionTrigger") || has("ActionResult") {
            return Shape::Ignored("EmailPostDeliveryEvents".to_owned());
        }
        if has("SenderFromAddress") && has("RecipientEmailAddress") && has("Subject") {
            return Shape::Record(Schema::EmailEvents);
        }
    }
    Shape::Unknown
}

fn parse_record(schema: Schema, row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<Outcome, Reject> {
    match schema {
        Schema::Ual => ual::ual(row),
        Schema::EntraSignin => entra::signin(row, outer),
        Schema::EntraAudit => entra::audit(row, outer),
        Schema::EmailEvents => email::email_event(row, outer),
        Schema::EmailUrlInfo => email::email_url(row, outer),
        Schema::UrlClickEvents => email::url_click(row, outer),
        Schema::MessageTrace => email::message_trace(row),
    }
}

fn saas(ts_us: u64, schema: Schema, id: String, user: String, ip: Option<IpAddr>) -> SaasEvent {
    SaasEvent {
        ts_us,
        schema,
        id,
        user,
        ip,
        operation: String::new(),
        kind: SaasKind::Other,
    }
}

fn done(ev: SaasEvent) -> Result<Outcome, Reject> {
    Ok(Outcome::Record(Box::new(Record::Saas(ev))))
}

// ---------------------------------------------------------------------------------------------
// CSV

/// The column names of a CSV export (`Start_Time [UTC]` is read as `Start_Time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader {
    names: Vec<String>,
}

/// Column names that mark a header row of a supported export.
const HEADER_NAMES: &[&str] = &[
    "Operation",
    "Operations",
    "AuditData",
    "CreationDate",
    "CreationTime",
    "UserId",
    "UserIds",
    "TimeGenerated",
    "RecordType",
    "Timestamp",
    "NetworkMessageId",
    "UserPrincipalName",
    "Received",
    "SenderAddress",
    "OfficeWorkload",
];

impl CsvHeader {
    /// Reads a header row.
    pub fn parse(line: &[u8]) -> Result<CsvHeader, Reject> {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let rec = csv_record(line)?;
        if rec.len() > MAX_COLUMNS {
            TRUNCATED.fetch_add(1, Ordering::Relaxed);
        }
        let names = rec
            .iter()
            .take(MAX_COLUMNS)
            .map(|c| {
                let c = c.trim();
                c.strip_suffix("[UTC]").map_or(c, str::trim_end).to_owned()
            })
            .collect();
        Ok(CsvHeader { names })
    }

    /// Whether `line` looks like the header row of a supported CSV export.
    pub fn looks_like(line: &[u8]) -> bool {
        CsvHeader::parse(line).is_ok_and(|h| {
            h.names.len() >= 2
                && h.names
                    .iter()
                    .any(|n| HEADER_NAMES.iter().any(|k| k.eq_ignore_ascii_case(n)))
        })
    }
}

fn csv_record(line: &[u8]) -> Result<csv::StringRecord, Reject> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut rec = csv::StringRecord::new();
    match rdr.read_record(&mut rec) {
        Ok(_) => Ok(rec),
        Err(e) => Err(Reject::Csv(e.to_string())),
    }
}

/// [`visit`] over one CSV data row: the row becomes an object of its non-empty cells (cells
/// holding JSON stay strings and are read as JSON where a structured field is expected).
pub fn visit_csv_row(header: &CsvHeader, row: &[u8], f: &mut dyn FnMut(Result<Outcome, Reject>)) {
    if row.len() > MAX_LINE {
        return f(Err(Reject::TooLong));
    }
    let rec = match csv_record(row) {
        Ok(rec) => rec,
        Err(e) => return f(Err(e)),
    };
    let mut obj = Map::new();
    for (name, cell) in header.names.iter().zip(rec.iter()) {
        if !cell.trim().is_empty() && !name.is_empty() && !obj.contains_key(name) {
            obj.insert(name.clone(), Value::String(cell.to_owned()));
        }
    }
    visit(&Value::Object(obj), f);
}

/// Reads a whole CSV export (header row first) and calls `f` with the line number where each
/// row starts and what the row became. A bad row is reported and the rest goes on; rows
/// longer than [`MAX_LINE`] are rejected without being held in memory.
pub fn parse_csv<R: Read>(
    mut r: R,
    mut f: impl FnMut(u64, Result<Outcome, Reject>),
) -> std::io::Result<()> {
    let mut split = LineSplitter::new(true, 0, 1);
    let mut header: Option<CsvHeader> = None;
    let mut handle = |p: Piece<'_>| {
        let Some(text) = p.text else {
            return f(p.line, Err(Reject::TooLong));
        };
        if text.trim_ascii().is_empty() {
            return;
        }
        match &header {
            None => match CsvHeader::parse(text) {
                Ok(h) => header = Some(h),
                Err(e) => f(p.line, Err(e)),
            },
            Some(h) => visit_csv_row(h, text, &mut |r| f(p.line, r)),
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        split.feed(buf.get(..n).unwrap_or_default(), &mut handle);
    }
    split.finish(&mut handle);
    Ok(())
}

/// Helpers for the parser tests.
#[cfg(test)]
pub(crate) mod test_util {
    use std::net::IpAddr;

    use chrono::DateTime;

    use super::parse_line;
    use crate::ingest::record::{EmailEvent, Record, SaasEvent};

    pub(crate) fn one(json: &str) -> Record {
        let mut v = parse_line(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(v.len(), 1, "{json}");
        v.remove(0)
    }

    pub(crate) fn saas_of(json: &str) -> SaasEvent {
        match one(json) {
            Record::Saas(s) => s,
            other => panic!("not saas: {other:?}"),
        }
    }

    pub(crate) fn email_of(json: &str) -> EmailEvent {
        match one(json) {
            Record::Email(e) => e,
            other => panic!("not email: {other:?}"),
        }
    }

    pub(crate) fn reject(json: &str) -> String {
        parse_line(json.as_bytes()).unwrap_err().to_string()
    }

    pub(crate) fn us(rfc3339: &str) -> u64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_micros()
            .try_into()
            .unwrap()
    }

    pub(crate) fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::test_util::*;

    #[test]
    fn known_irrelevant_records_are_ignored_not_rejected() {
        let v: Value = serde_json::from_str(
            r#"{"category":"AdvancedHunting-EmailAttachmentInfo","properties":{"NetworkMessageId":"n","FileName":"a.png"}}"#,
        )
        .unwrap();
        assert_eq!(classify(&v), Shape::Ignored("EmailAttachmentInfo".into()));
        assert_eq!(parse_value(&v), Ok(vec![]));
        let v: Value =
            serde_json::from_str(r#"{"category":"AdvancedHunting-DeviceEvents","properties":{}}"#)
                .unwrap();
        assert_eq!(classify(&v), Shape::Ignored("DeviceEvents".into()));
        let v: Value = serde_json::from_str(
            r#"{"Timestamp":"2024-01-01T00:00:00Z","NetworkMessageId":"n","ActionTrigger":"t"}"#,
        )
        .unwrap();
        assert_eq!(
            classify(&v),
            Shape::Ignored("EmailPostDeliveryEvents".into())
        );
    }

    #[test]
    fn rejections_say_why() {
        assert_eq!(
            reject(r#"{"Operation":"UserLoggedIn","#),
            "invalid JSON at column 28: EOF while parsing a value"
        );
        assert_eq!(
            reject(r#"{"a":1 x}"#),
            "invalid JSON at column 8: expected `,` or `}`"
        );
        assert_eq!(
            reject(r#"{"Operation":"UserLoggedIn","UserId":"a@b.c","RecordType":15}"#),
            "missing field CreationTime"
        );
        assert_eq!(
            reject(r#"{"Operation":"UserLoggedIn","UserId":"a@b.c","CreationTime":1612515967}"#),
            "CreationTime: not a string"
        );
        assert_eq!(
            reject(r#"{"Operation":"UserLoggedIn","UserId":"a@b.c","CreationTime":"yesterday"}"#),
            "CreationTime: not a time"
        );
        assert_eq!(
            reject(r#"{"Operation":["x"],"UserId":"a@b.c","CreationTime":"2024-01-01T00:00:00"}"#),
            "Operation: not a string"
        );
        assert_eq!(
            reject(r#"{"Operation":"X","CreationTime":"2024-01-01T00:00:00"}"#),
            "missing field UserId"
        );
        assert_eq!(
            reject(r#"{"Timestamp":"2024-01-01T00:00:00Z","EmailDirection":"Inbound"}"#),
            "missing field NetworkMessageId"
        );
        assert_eq!(
            reject(r#"{"hello":"world","n":1}"#),
            "unknown record shape (keys: hello, n)"
        );
        assert_eq!(reject("42"), "unknown record shape (a number)");
        assert_eq!(reject("{}"), "unknown record shape (no keys)");
        let garbage: Vec<u8> = (0..=255u8).rev().collect();
        assert!(
            parse_line(&garbage)
                .unwrap_err()
                .to_string()
                .starts_with("invalid JSON at column 1")
        );
        assert_eq!(parse_line(&vec![b' '; MAX_LINE + 1]), Err(Reject::TooLong));
        // serde_json's own nesting limit stops deep input without a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse_line(deep.as_bytes()).is_err());
    }

    #[test]
    fn containers_report_each_element() {
        let line = r#"[{"CreationTime":"2024-01-01T00:00:00","Operation":"Send","UserId":"a@b.c"},{"Operation":"Send","UserId":"a@b.c"},
            {"records":[{"category":"AdvancedHunting-EmailAttachmentInfo","properties":{}}]}]"#;
        let mut seen = Vec::new();
        visit_line(line.as_bytes(), &mut |r| seen.push(r));
        assert_eq!(seen.len(), 3);
        assert!(matches!(seen[0], Ok(Outcome::Record(_))));
        assert_eq!(
            seen[1].as_ref().unwrap_err().to_string(),
            "element 1: missing field CreationTime"
        );
        assert_eq!(seen[2], Ok(Outcome::Ignored("EmailAttachmentInfo".into())));
        // parse_value of the whole container fails with the first rejection.
        assert_eq!(
            parse_line(line.as_bytes()).unwrap_err().to_string(),
            "element 1: missing field CreationTime"
        );
        let mut nested = String::from(
            r#"{"CreationTime":"2024-01-01T00:00:00","Operation":"Send","UserId":"a@b.c"}"#,
        );
        for _ in 0..=MAX_NESTING {
            nested = format!("[{nested}]");
        }
        assert!(reject(&nested).ends_with("containers nested deeper than 4"));
    }

    #[test]
    fn test_wrapper_uses_o365audit_and_survives_bad_original() {
        let doc = r#"{"events":[{"event":{"original":"{not json"},"o365audit":{"CreationTime":"2021-02-05T09:06:07","Operation":"UserLoggedIn",
            "RecordType":"15","UserId":"root@testsiem4.onmicrosoft.com","ClientIP":"67.43.156.13","ErrorNumber":"0"}},
            {"event":{"original":"{\"CreationTime\":\"2021-02-05T09:06:08\",\"Operation\":\"Send\",\"UserId\":\"a@b.c\"}"}},
            {"event":{"original":"{bad"}}]}"#;
        let mut seen = Vec::new();
        visit_line(doc.as_bytes(), &mut |r| seen.push(r));
        assert_eq!(seen.len(), 3);
        assert!(
            matches!(&seen[0], Ok(Outcome::Record(r)) if matches!(**r, Record::Saas(SaasEvent { kind: SaasKind::Login { success: true, .. }, .. })))
        );
        assert!(matches!(&seen[1], Ok(Outcome::Record(_))));
        assert_eq!(
            seen[2].as_ref().unwrap_err().to_string(),
            "element 2: event.original: invalid JSON at column 2: key must be a string"
        );
    }

    #[test]
    fn generic_ual_csv_export_reads_audit_data() {
        let csv = "\u{feff}CreationDate,UserIds,Operations,AuditData\r\n\
            2024-03-20T10:00:00.0000000Z,alice@contoso.com,New-InboxRule,\"{\"\"CreationTime\"\":\"\"2024-03-20T10:00:00\"\",\"\"Operation\"\":\"\"New-InboxRule\"\",\"\"UserId\"\":\"\"alice@contoso.com\"\",\"\"ClientIP\"\":\"\"45.1.2.3:1234\"\",\"\"Parameters\"\":[{\"\"Name\"\":\"\"Name\"\",\"\"Value\"\":\"\"r\"\"}]}\"\r\n\
            2024-03-20T10:00:01.0000000Z,alice@contoso.com,Send,\"{broken}\"\r\n\
            \r\n\
            2024-03-20T10:00:02.0000000Z,bob@contoso.com,Send,\"{\"\"CreationTime\"\":\"\"2024-03-20T10:00:02\"\",\"\"Operation\"\":\"\"Send\"\",\"\"UserId\"\":\"\"bob@contoso.com\"\"}\"\r\n";
        let mut seen = Vec::new();
        parse_csv(csv.as_bytes(), |line, r| seen.push((line, r))).unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        let (line, first) = &seen[0];
        assert_eq!(*line, 2);
        match first {
            Ok(Outcome::Record(r)) => match &**r {
                Record::Saas(s) => {
                    assert_eq!(s.ip, ip("45.1.2.3"));
                    assert!(matches!(&s.kind, SaasKind::InboxRule { name, .. } if name == "r"));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // The broken row is rejected with its line number; the blank line is skipped and the
        // row after it is read.
        assert_eq!(seen[1].0, 3);
        assert_eq!(
            seen[1].1.as_ref().unwrap_err().to_string(),
            "AuditData: invalid JSON at column 2: key must be a string"
        );
        assert_eq!(seen[2].0, 5);
        assert!(matches!(seen[2].1, Ok(Outcome::Record(_))));
    }

    /// Records of every schema, mutated byte by byte and cut at random places: every entry
    /// point returns (a record or a rejection) without panicking.
    #[test]
    fn mutated_records_never_panic() {
        let seeds: &[&str] = &[
            r#"{"CreationTime":"2024-03-19T09:00:00","Operation":"Update user.","UserId":"x","ObjectId":"a@b.c","ModifiedProperties":[{"Name":"StrongAuthenticationMethod","NewValue":"[{\"MethodType\":6},{\"MethodType\":5}]","OldValue":"[{\"MethodType\":6}]"}],"Target":[{"ID":"a@b.c","Type":5}]}"#,
            r#"{"CreationTime":"2024-03-20T10:00:00","Operation":"New-InboxRule","UserId":"a@b.c","ClientIP":"[2001:db8::1]:443","Parameters":"-Name \"x\" -MoveToFolder (\"A\",\"B\") -Force -X $true"}"#,
            r#"{"time":"2024-03-18T14:02:11Z","category":"SignInLogs","callerIpAddress":"1.2.3.4:5","properties":{"userPrincipalName":"a@b.c","status":{"errorCode":0},"location":{"countryOrRegion":"NL","geoCoordinates":{"latitude":1,"longitude":2}}}}"#,
            r#"{"activityDisplayName":"User registered security info","activityDateTime":"2024-03-19T09:00:00Z","initiatedBy":{"user":{"userPrincipalName":"a@b.c","ipAddress":"::ffff:1.2.3.4"}},"targetResources":[{"type":"User","userPrincipalName":"a@b.c","modifiedProperties":"[{\"displayName\":\"StrongAuthenticationPhoneAppDetail\",\"oldValue\":\"[]\",\"newValue\":\"[{}]\"}]"}]}"#,
            r#"{"category":"AdvancedHunting-EmailUrlInfo","properties":{"Timestamp":"2024-03-18T13:55:00Z","NetworkMessageId":"n","Url":"http://u:p@[::1]:8/x?y#z","UrlLocation":"Body"}}"#,
            r#"{"events":[{"o365audit":{"CreationTime":"2021-02-05T09:06:07","Operation":"UserLoggedIn","UserId":"a@b.c","ErrorNumber":"0"},"event":{"original":"{\"a\":1}"}}]}"#,
            r#"{"Organization":"b.c","Received":"2022-09-05T18:10:13.4907658","SenderAddress":"x@y.z","RecipientAddress":"a@b.c","MessageTraceId":"t"}"#,
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let specials = b"\"\\[]{}:,-()@$ 0\xff\xc3";
        let header =
            CsvHeader::parse(b"Operation,UserId,CreationTime,Parameters,AuditData").unwrap();
        let mut outcomes = 0usize;
        for round in 0..3000 {
            let seed = seeds[round % seeds.len()].as_bytes();
            let mut b = seed.to_vec();
            for _ in 0..(next() % 6) {
                let i = (next() as usize) % b.len();
                let c = specials[(next() as usize) % specials.len()];
                match next() % 3 {
                    0 => b[i] = c,
                    1 => b.insert(i, c),
                    _ => {
                        b.remove(i);
                    }
                }
            }
            if next() % 4 == 0 {
                b.truncate((next() as usize) % (b.len() + 1));
            }
            visit_line(&b, &mut |_| outcomes += 1);
            visit_csv_row(&header, &b, &mut |_| outcomes += 1);
            let text = String::from_utf8_lossy(&b);
            let _ = (
                split_params(&text),
                url_host(&text),
                parse_ip(&text),
                parse_time(&text),
            );
        }
        assert!(
            outcomes >= 6000,
            "every line and row gives at least one outcome"
        );
    }
}

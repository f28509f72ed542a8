//! Defender for Office 365 Advanced Hunting rows (`EmailEvents`, `EmailUrlInfo`,
//! `UrlClickEvents`) and Exchange Online message trace rows.

use super::fields::{Obj, cap, ip_any, norm_user, time_field};
use super::{Outcome, Reject};
use crate::ingest::record::{Direction, EmailEvent, EmailKind, Record, Schema};

pub(super) fn email(
    ts_us: u64,
    schema: Schema,
    message_id: String,
    kind: EmailKind,
) -> Result<Outcome, Reject> {
    Ok(Outcome::Record(Box::new(Record::Email(EmailEvent {
        ts_us,
        schema,
        message_id,
        kind,
    }))))
}

pub(super) fn hunting_time(row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<u64, Reject> {
    time_field(row, &["Timestamp", "TimeGenerated"])
        .or_else(|| outer.and_then(|o| time_field(o, &["time"])))
        .unwrap_or(Err(Reject::Missing("Timestamp")))
}

pub(super) fn lower(o: Obj<'_>, keys: &[&str]) -> String {
    o.text_any(keys).map(|s| norm_user(&s)).unwrap_or_default()
}

pub(super) fn email_event(row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<Outcome, Reject> {
    let ts_us = hunting_time(row, outer)?;
    let message_id = cap(&row.required_text(&["NetworkMessageId"])?);
    let direction = match row.text("EmailDirection").as_deref().map(str::trim) {
        Some(d) if d.eq_ignore_ascii_case("Inbound") => Direction::Inbound,
        Some(d) if d.eq_ignore_ascii_case("Outbound") => Direction::Outbound,
        Some(d) if d.eq_ignore_ascii_case("Intra-org") || d.eq_ignore_ascii_case("IntraOrg") => {
            Direction::IntraOrg
        }
        _ => Direction::Unknown,
    };
    let kind = EmailKind::Message {
        direction,
        sender: lower(row, &["SenderFromAddress", "SenderMailFromAddress"]),
        recipient: lower(row, &["RecipientEmailAddress"]),
        subject: row.text("Subject").map(|s| cap(&s)).unwrap_or_default(),
        sender_ip: ip_any(row, &["SenderIPv4", "SenderIPv6"]),
        delivery: row.nonempty("DeliveryAction").map(|s| cap(&s)),
    };
    email(ts_us, Schema::EmailEvents, message_id, kind)
}

pub(super) fn email_url(row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<Outcome, Reject> {
    let ts_us = hunting_time(row, outer)?;
    let url = row.required_text(&["Url"])?;
    let domain = row
        .nonempty("UrlDomain")
        .map(|d| cap(d.trim().trim_end_matches('.')).to_lowercase())
        .or_else(|| url_host(&url))
        .unwrap_or_default();
    let message_id = row
        .text("NetworkMessageId")
        .map(|s| cap(&s))
        .unwrap_or_default();
    let kind = EmailKind::Url {
        url: cap(&url),
        domain,
    };
    email(ts_us, Schema::EmailUrlInfo, message_id, kind)
}

pub(super) fn url_click(row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<Outcome, Reject> {
    let ts_us = hunting_time(row, outer)?;
    let url = row.required_text(&["Url"])?;
    let message_id = row
        .text("NetworkMessageId")
        .map(|s| cap(&s))
        .unwrap_or_default();
    let kind = EmailKind::Click {
        user: lower(row, &["AccountUpn"]),
        ip: ip_any(row, &["IPAddress"]),
        url: cap(&url),
    };
    email(ts_us, Schema::UrlClickEvents, message_id, kind)
}

pub(super) fn message_trace(row: Obj<'_>) -> Result<Outcome, Reject> {
    let ts_us = time_field(row, &["Received"]).unwrap_or(Err(Reject::Missing("Received")))?;
    let message_id = row
        .text_any(&["MessageId", "MessageTraceId"])
        .map(|s| cap(s.trim()))
        .unwrap_or_default();
    let sender = lower(row, &["SenderAddress"]);
    let recipient = lower(row, &["RecipientAddress"]);
    let direction = match row.nonempty("Organization") {
        Some(org) => {
            let org = org.trim().to_lowercase();
            let inside = |addr: &str| {
                addr.rsplit_once('@').is_some_and(|(_, d)| {
                    d == org
                        || d.strip_suffix(org.as_str())
                            .is_some_and(|p| p.ends_with('.'))
                })
            };
            match (inside(&sender), inside(&recipient)) {
                (true, true) => Direction::IntraOrg,
                (false, true) => Direction::Inbound,
                (true, false) => Direction::Outbound,
                (false, false) => Direction::Unknown,
            }
        }
        None => Direction::Unknown,
    };
    let kind = EmailKind::Message {
        direction,
        sender,
        recipient,
        subject: row.text("Subject").map(|s| cap(&s)).unwrap_or_default(),
        sender_ip: ip_any(row, &["FromIP"]),
        delivery: row.nonempty("Status").map(|s| cap(&s)),
    };
    email(ts_us, Schema::MessageTrace, message_id, kind)
}

/// The lower-case host of a URL: scheme, userinfo, port, path, query and fragment dropped.
pub fn url_host(url: &str) -> Option<String> {
    let s = url.trim();
    let rest = match s.find("://") {
        Some(i)
            if s[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            &s[i + 3..]
        }
        _ => s.strip_prefix("//").unwrap_or(s),
    };
    let authority = &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => &v6[..v6.find(']')?],
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| cap(host).to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::test_util::*;

    #[test]
    fn email_rows_flat_and_wrapped() {
        let e = email_of(
            r#"{"Timestamp":"2024-03-18T13:55:00Z","NetworkMessageId":"n-1","EmailDirection":"Inbound","SenderFromAddress":"X@Zixmail.net",
            "RecipientEmailAddress":"Alice@contoso.com","Subject":"Hi","SenderIPv4":"","SenderIPv6":"2001:db8::9","DeliveryAction":"Delivered"}"#,
        );
        assert_eq!(e.message_id, "n-1");
        assert_eq!(
            e.kind,
            EmailKind::Message {
                direction: Direction::Inbound,
                sender: "x@zixmail.net".into(),
                recipient: "alice@contoso.com".into(),
                subject: "Hi".into(),
                sender_ip: ip("2001:db8::9"),
                delivery: Some("Delivered".into()),
            }
        );
        let u = email_of(
            r#"{"category":"AdvancedHunting-EmailUrlInfo","properties":{"NetworkMessageId":"n-1","Timestamp":"2024-03-18T13:55:00Z",
            "Url":"https://user:pw@DocSend.com:443/view/vcdmsmjcskw69jh9#x","UrlLocation":"Body"},"time":"2024-03-18T13:56:00Z"}"#,
        );
        assert_eq!(
            u.kind,
            EmailKind::Url {
                url: "https://user:pw@DocSend.com:443/view/vcdmsmjcskw69jh9#x".into(),
                domain: "docsend.com".into()
            }
        );
        let c = email_of(
            r#"{"Timestamp":"2024-03-20T09:00:00Z","Url":"https://docsend.com/view/x","ActionType":"ClickAllowed","AccountUpn":"Bob@contoso.com",
            "IPAddress":"10.1.2.3","NetworkMessageId":"n-2","IsClickedThrough":false}"#,
        );
        assert_eq!(
            c.kind,
            EmailKind::Click {
                user: "bob@contoso.com".into(),
                ip: ip("10.1.2.3"),
                url: "https://docsend.com/view/x".into()
            }
        );
    }

    #[test]
    fn message_trace_direction_from_the_organization() {
        let rec = r#"{"Organization":"contoso.com","MessageId":"<m@x>","MessageTraceId":"t","Received":"2024-03-20T09:00:00.1234567",
            "SenderAddress":"alice@contoso.com","RecipientAddress":"bob@mail.contoso.com","Subject":"s","Status":"Delivered","FromIP":"10.0.0.1"}"#;
        let dir = |r: &str| match email_of(r).kind {
            EmailKind::Message { direction, .. } => direction,
            other => panic!("{other:?}"),
        };
        assert_eq!(dir(rec), Direction::IntraOrg);
        assert_eq!(
            dir(&rec.replace("bob@mail.contoso.com", "x@other.org")),
            Direction::Outbound
        );
        assert_eq!(
            dir(&rec.replace("bob@mail.contoso.com", "x@notcontoso.com")),
            Direction::Outbound
        );
        assert_eq!(
            dir(&rec.replace(r#""Organization":"contoso.com","#, "")),
            Direction::Unknown
        );
        assert_eq!(email_of(rec).ts_us, us("2024-03-20T09:00:00.123456Z"));
    }

    #[test]
    fn url_hosts() {
        let h = |u: &str| url_host(u);
        assert_eq!(
            h("http://myusername:mypassword@www.example.com:80/foo.gif?k=v#f").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            h("https://[2001:db8::1]:8443/x").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(h("Example.COM./path").as_deref(), Some("example.com"));
        assert_eq!(h("https://a.b?q=@evil.com").as_deref(), Some("a.b"));
        assert_eq!(h("https:///nohost"), None);
        assert_eq!(h(""), None);
    }
}

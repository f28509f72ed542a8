//! Management Activity API / Unified Audit Log records (also Sentinel `OfficeActivity` rows):
//! logins, inbox rules, mailbox forwarding, MFA changes, mail access and sends.
//!
//! Limits: at most [`MAX_PARAMS`] parameters and list entries are read per record.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::fields::{
    Obj, cap, ip_any, is_upn, norm_user, strip_prefix_ci, structured, time_field, value_string,
};
use super::{MAX_PARAMS, Outcome, Reject, TRUNCATED, done, saas};
use crate::ingest::record::{SaasKind, Schema};

pub(super) const UAL_TIME: &[&str] = &[
    "CreationTime",
    "TimeGenerated",
    "Start_Time",
    "CreationDate",
    "ElevationTime",
];
pub(super) const UAL_IP: &[&str] = &[
    "ClientIP",
    "ClientIPAddress",
    "Client_IPAddress",
    "ActorIpAddress",
];
pub(super) const MFA_OPS: &[&str] = &[
    "User registered security info",
    "User registered all required security info",
    "User changed default security info",
    "Admin registered security info",
];

pub(super) fn is_mfa_op(op: &str) -> bool {
    MFA_OPS.iter().any(|m| m.eq_ignore_ascii_case(op))
}

pub(super) fn is_update_user(op: &str) -> bool {
    op.eq_ignore_ascii_case("Update user.") || op.eq_ignore_ascii_case("Update user")
}

pub(super) fn ual(o: Obj<'_>) -> Result<Outcome, Reject> {
    let op = o.required_text(&["Operation", "Operations"])?;
    let ts_us = time_field(o, UAL_TIME).unwrap_or(Err(Reject::Missing("CreationTime")))?;
    let about_target = is_update_user(&op) || is_mfa_op(&op);
    let user = ual_user(o, about_target).ok_or(Reject::Missing("UserId"))?;
    let id = o
        .text_any(&["Id", "OfficeId"])
        .map(|s| cap(&s))
        .unwrap_or_default();
    let mut ev = saas(ts_us, Schema::Ual, id, user, ip_any(o, UAL_IP));
    ev.kind = ual_kind(o, &op);
    let failed = o.text("ResultStatus").is_some_and(|s| {
        ["false", "failed", "failure"]
            .iter()
            .any(|f| s.trim().eq_ignore_ascii_case(f))
    });
    if failed && !matches!(ev.kind, SaasKind::Login { .. }) {
        ev.kind = SaasKind::Other;
    }
    ev.operation = cap(&op);
    done(ev)
}

pub(super) fn ual_kind(o: Obj<'_>, op: &str) -> SaasKind {
    match op {
        "UserLoggedIn" | "UserLoginFailed" => {
            let error = o
                .text_any(&["ErrorNumber", "LogonError"])
                .filter(|e| !e.trim().is_empty());
            let success = op == "UserLoggedIn" && error.as_deref().is_none_or(|e| e.trim() == "0");
            SaasKind::Login {
                success,
                error_code: error.map(|e| cap(e.trim())),
                country: None,
                city: None,
                geo: None,
                user_agent: name_value(o.get("ExtendedProperties"), "UserAgent"),
                correlation_id: o.nonempty("InterSystemsId").map(|s| cap(&s)),
            }
        }
        "New-InboxRule" | "Set-InboxRule" | "UpdateInboxRules" => {
            let mut params = Vec::new();
            if let Some(p) = o.get("Parameters") {
                push_params(p, &mut params);
            }
            if let Some(p) = o.get("OperationProperties") {
                push_params(p, &mut params);
            }
            let param = |n: &str| {
                params
                    .iter()
                    .find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.is_empty())
                    .map(|(_, v)| v.clone())
            };
            // `Identity` and `ObjectId` name the rule as `mailbox\rule`.
            let tail = |id: &str| {
                let (_, rule) = id.rsplit_once('\\')?;
                (!rule.is_empty()).then(|| cap(rule))
            };
            let name = param("Name")
                .or_else(|| param("RuleName"))
                .or_else(|| tail(&param("Identity")?))
                .or_else(|| tail(&o.text_any(&["ObjectId", "OfficeObjectId"])?))
                .unwrap_or_default();
            SaasKind::InboxRule { name, params }
        }
        "Set-Mailbox" => {
            let mut params = Vec::new();
            if let Some(p) = o.get("Parameters") {
                push_params(p, &mut params);
            }
            let target = params.iter().find_map(|(k, v)| {
                let forwarding = k.eq_ignore_ascii_case("ForwardingSmtpAddress")
                    || k.eq_ignore_ascii_case("ForwardingAddress");
                let v = v.trim();
                let v = strip_prefix_ci(v, "smtp:").unwrap_or(v);
                (forwarding && !v.is_empty() && !v.eq_ignore_ascii_case("$null"))
                    .then(|| v.to_lowercase())
            });
            match target {
                Some(target) => SaasKind::Forwarding { target },
                None => SaasKind::Other,
            }
        }
        "MailItemsAccessed" => SaasKind::MailAccess {
            items: mail_items(o),
        },
        "Send" | "SendAs" | "SendOnBehalf" => {
            let item = o.get("Item").and_then(structured);
            let subject = item
                .as_deref()
                .and_then(Value::as_object)
                .and_then(|m| Obj(m).text("Subject"))
                .map(|s| cap(&s));
            SaasKind::Send { subject }
        }
        _ if is_update_user(op) => {
            mfa_change(o.get("ModifiedProperties")).unwrap_or(SaasKind::Other)
        }
        _ if is_mfa_op(op) => {
            mfa_change(o.get("ModifiedProperties")).unwrap_or_else(|| SaasKind::MfaChange {
                before: None,
                after: None,
                detail: cap(op),
            })
        }
        _ => SaasKind::Other,
    }
}

/// The user of a UAL record: a UPN from `UserId`, else from a Type-5 `Actor`/`Target` entry,
/// else the mailbox owner; failing those, `UserId` (or `UserKey`) as given. For operations on
/// another user (`Update user.`, security info) the target's UPN comes first.
pub(super) fn ual_user(o: Obj<'_>, about_target: bool) -> Option<String> {
    if about_target {
        if let Some(u) = type5_upn(o.get("Target")) {
            return Some(u);
        }
        if let Some(obj) = o
            .text_any(&["ObjectId", "OfficeObjectId"])
            .filter(|s| is_upn(s))
        {
            return Some(norm_user(&obj));
        }
    }
    let user_id = o.nonempty("UserId");
    if let Some(u) = user_id.as_deref().filter(|u| is_upn(u)) {
        return Some(norm_user(u));
    }
    if let Some(u) = type5_upn(o.get("Actor")).or_else(|| type5_upn(o.get("Target"))) {
        return Some(u);
    }
    if let Some(u) = o.text("MailboxOwnerUPN").filter(|u| is_upn(u)) {
        return Some(norm_user(&u));
    }
    user_id
        .or_else(|| o.nonempty("UserIds"))
        .or_else(|| o.nonempty("UserKey"))
        .map(|u| norm_user(&u))
}

/// The UPN of the first `{"ID": .., "Type": 5}` entry of an `Actor`/`Target` list.
pub(super) fn type5_upn(v: Option<&Value>) -> Option<String> {
    let list = structured(v?)?;
    list.as_array()?.iter().take(MAX_PARAMS).find_map(|e| {
        let e = Obj(e.as_object()?);
        let is5 = e.text("Type").is_some_and(|t| t.trim() == "5");
        let id = e.text("ID")?;
        (is5 && is_upn(&id)).then(|| norm_user(&id))
    })
}

/// `Value` of the `{"Name": name, "Value": ..}` entry of a list (e.g. `ExtendedProperties`).
pub(super) fn name_value(v: Option<&Value>, name: &str) -> Option<String> {
    let list = structured(v?)?;
    list.as_array()?.iter().take(MAX_PARAMS).find_map(|e| {
        let e = Obj(e.as_object()?);
        let n = e.text("Name")?;
        if !n.eq_ignore_ascii_case(name) {
            return None;
        }
        e.nonempty("Value").map(|s| cap(&s))
    })
}

pub(super) fn mail_items(o: Obj<'_>) -> u32 {
    let mut items: u64 = 0;
    if let Some(folders) = o.get("Folders").and_then(structured) {
        for f in folders.as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(Value::Array(list)) = f.as_object().and_then(|m| Obj(m).get("FolderItems"))
            {
                items = items.saturating_add(list.len() as u64);
            }
        }
    }
    if items == 0 {
        items = o
            .text("OperationCount")
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
    }
    u32::try_from(items).unwrap_or(u32::MAX)
}

/// Appends the Name/Value pairs of a `Parameters`/`OperationProperties` value: a list of
/// `{"Name", "Value"}`, a JSON string of one, or a cmdlet string (`-Name "x" -Force`).
pub(super) fn push_params(v: &Value, out: &mut Vec<(String, String)>) {
    if let Some(s) = structured(v) {
        if let Some(list) = s.as_array() {
            for e in list {
                let Some(e) = e.as_object().map(Obj) else {
                    continue;
                };
                let Some(name) = e.text("Name") else {
                    continue;
                };
                if out.len() >= MAX_PARAMS {
                    TRUNCATED.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                out.push((
                    cap(&name),
                    e.get("Value").map(value_string).unwrap_or_default(),
                ));
            }
        }
        return;
    }
    if let Some(s) = v.as_str() {
        for pair in split_params(s) {
            if out.len() >= MAX_PARAMS {
                TRUNCATED.fetch_add(1, Ordering::Relaxed);
                return;
            }
            out.push(pair);
        }
    }
}

/// Splits a cmdlet parameter string (`-Name "x" -MarkAsRead "True" -Force -Types ("A","B")`)
/// into Name/Value pairs. A switch without a value is "True"; a list `("A","B")` becomes
/// `A,B`; `$true`/`$false`/`$null` become "True"/"False"/"". Text that is not a parameter is
/// skipped. At most [`MAX_PARAMS`] pairs.
pub fn split_params(s: &str) -> Vec<(String, String)> {
    // Indexes only move forward, are checked against `n` before use, and stop on ASCII
    // delimiters, so every index is in bounds and every slice is on a char boundary.
    let b = s.as_bytes();
    let n = b.len();
    let is_param_at = |i: usize| i + 1 < n && b[i] == b'-' && b[i + 1].is_ascii_alphabetic();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        while i < n && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        if !is_param_at(i) {
            while i < n && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        i += 1;
        let name_start = i;
        while i < n && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &s[name_start..i];
        if i < n && b[i] == b':' {
            i += 1;
        }
        while i < n && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value: Cow<'_, str> = if i >= n || is_param_at(i) {
            Cow::Borrowed("True")
        } else if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            let start = i + 1;
            // The closing quote is one followed by the end or by whitespace and the next
            // `-Param`, so quotes inside a value survive.
            let closes = |j: usize| {
                let mut k = j + 1;
                if k >= n {
                    return true;
                }
                if !b[k].is_ascii_whitespace() {
                    return false;
                }
                while k < n && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                k >= n || is_param_at(k)
            };
            let end = (start..n).find(|&j| b[j] == q && closes(j));
            match end {
                Some(j) => {
                    i = j + 1;
                    Cow::Borrowed(&s[start..j])
                }
                None => {
                    i = n;
                    Cow::Borrowed(&s[start..])
                }
            }
        } else if b[i] == b'(' {
            let start = i + 1;
            let mut depth = 0usize;
            let mut quoted = false;
            let mut end = n;
            for (j, &c) in b.iter().enumerate().skip(i) {
                match c {
                    b'"' => quoted = !quoted,
                    b'(' if !quoted => depth += 1,
                    b')' if !quoted => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            i = (end + 1).min(n);
            Cow::Owned(s[start..end].replace('"', ""))
        } else {
            let start = i;
            while i < n && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            let word = &s[start..i];
            Cow::Borrowed(if word.eq_ignore_ascii_case("$true") {
                "True"
            } else if word.eq_ignore_ascii_case("$false") {
                "False"
            } else if word.eq_ignore_ascii_case("$null") {
                ""
            } else {
                word
            })
        };
        if out.len() >= MAX_PARAMS {
            TRUNCATED.fetch_add(1, Ordering::Relaxed);
            break;
        }
        out.push((cap(name), cap(&value)));
    }
    out
}

/// An MFA change found in a `ModifiedProperties` (UAL) / `modifiedProperties` (Graph) list:
/// `StrongAuthenticationMethod` grew or gained a method type, or
/// `StrongAuthenticationPhoneAppDetail` grew.
pub(super) fn mfa_change(props: Option<&Value>) -> Option<SaasKind> {
    let props = structured(props?)?;
    let mut phone_app = None;
    for p in props.as_array()?.iter().take(MAX_PARAMS) {
        let Some(p) = p.as_object().map(Obj) else {
            continue;
        };
        let Some(name) = p.text_any(&["Name", "displayName"]) else {
            continue;
        };
        if name.eq_ignore_ascii_case("StrongAuthenticationMethod") {
            let before = method_types(p.get("OldValue"));
            let after = method_types(p.get("NewValue"));
            let mut old = before.clone();
            let mut added = Vec::new();
            for t in &after {
                match old.iter().position(|o| o == t) {
                    Some(i) => {
                        old.swap_remove(i);
                    }
                    None => added.push(*t),
                }
            }
            if after.len() > before.len() || !added.is_empty() {
                let (b, a) = (count_u32(before.len()), count_u32(after.len()));
                let what = if added.is_empty() {
                    "authentication method".to_owned()
                } else {
                    added
                        .iter()
                        .map(|t| method_name(*t))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Some(SaasKind::MfaChange {
                    before: Some(b),
                    after: Some(a),
                    detail: cap(&format!("{what} added ({b} -> {a} methods)")),
                });
            }
        } else if name.eq_ignore_ascii_case("StrongAuthenticationPhoneAppDetail") {
            let before = list_len(p.get("OldValue"));
            let after = list_len(p.get("NewValue"));
            if after > before {
                phone_app = Some((count_u32(before), count_u32(after)));
            }
        }
    }
    phone_app.map(|(before, after)| SaasKind::MfaChange {
        before: Some(before),
        after: Some(after),
        detail: "Authenticator app added".to_owned(),
    })
}

pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The `MethodType` of each entry of a `StrongAuthenticationMethod` value (JSON, a string of
/// JSON, or JSON-ish text cut short); `u32::MAX` for an entry without a readable type.
pub(super) fn method_types(v: Option<&Value>) -> Vec<u32> {
    let Some(v) = v else { return Vec::new() };
    if let Some(list) = structured(v) {
        return list
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(MAX_PARAMS)
            .map(|e| {
                e.as_object()
                    .and_then(|m| Obj(m).text("MethodType"))
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(u32::MAX)
            })
            .collect();
    }
    let mut out = Vec::new();
    let mut rest = v.as_str().unwrap_or_default();
    while let Some(i) = rest.find("MethodType") {
        rest = &rest[i + "MethodType".len()..];
        let digits = rest.trim_start_matches(['"', '\\', ':', ' ']);
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        out.push(digits[..end].parse().unwrap_or(u32::MAX));
        if out.len() >= MAX_PARAMS {
            break;
        }
    }
    out
}

pub(super) fn method_name(t: u32) -> String {
    match t {
        5 => "PhoneAppOTP".to_owned(),
        6 => "PhoneAppNotification".to_owned(),
        u32::MAX => "authentication method".to_owned(),
        n => format!("method type {n}"),
    }
}

pub(super) fn list_len(v: Option<&Value>) -> usize {
    v.and_then(structured)
        .and_then(|l| l.as_array().map(Vec::len))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::test_util::*;

    #[test]
    fn cmdlet_parameter_strings_split_into_pairs() {
        let p = split_params(
            r#"-Name "x y" -MarkAsRead "True" -Force -Enabled:$true -Other $null -Types ("Bulk","Spam") -Empty () -Desc "" -Query "(c:c)(subject:"a b")" "#,
        );
        let want = [
            ("Name", "x y"),
            ("MarkAsRead", "True"),
            ("Force", "True"),
            ("Enabled", "True"),
            ("Other", ""),
            ("Types", "Bulk,Spam"),
            ("Empty", ""),
            ("Desc", ""),
            ("Query", r#"(c:c)(subject:"a b")"#),
        ];
        let got: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
        // Garbage and unterminated values never panic and keep what can be read.
        assert_eq!(
            split_params("junk -A \"open"),
            vec![("A".into(), "open".into())]
        );
        assert_eq!(split_params("-B (\"x\""), vec![("B".into(), "x".into())]);
        assert!(split_params("- -- \"\" ()").is_empty());
    }

    const UPDATE_USER: &str = r#"{"CreationTime":"2024-03-19T09:00:00","Id":"4b1f","Operation":"Update user.",
        "OrganizationId":"o","RecordType":8,"ResultStatus":"Success","UserKey":"Not Available","UserType":4,"Version":1,
        "Workload":"AzureActiveDirectory","ObjectId":"Alice@contoso.com","UserId":"ServicePrincipal_0b1c",
        "AzureActiveDirectoryEventType":1,"ExtendedProperties":[{"Name":"additionalDetails","Value":"{}"}],
        "ModifiedProperties":[{"Name":"StrongAuthenticationMethod","NewValue":"[\r\n  {\r\n    \"MethodType\": 6,\r\n    \"Default\": true\r\n  },\r\n  {\r\n    \"MethodType\": 5,\r\n    \"Default\": false\r\n  }\r\n]",
        "OldValue":"[\r\n  {\r\n    \"MethodType\": 6,\r\n    \"Default\": true\r\n  }\r\n]"},
        {"Name":"Included Updated Properties","NewValue":"StrongAuthenticationMethod","OldValue":""}],
        "Actor":[{"ID":"Azure MFA StrongAuthenticationService","Type":1},{"ID":"ServicePrincipal_0b1c","Type":2}],
        "Target":[{"ID":"User_9f","Type":2},{"ID":"9f","Type":2},{"ID":"User","Type":2},{"ID":"alice@contoso.com","Type":5},{"ID":"1003","Type":3}]}"#;

    #[test]
    fn ual_update_user_with_a_new_method_is_an_mfa_change() {
        let s = saas_of(UPDATE_USER);
        assert_eq!(s.schema, Schema::Ual);
        assert_eq!(
            s.user, "alice@contoso.com",
            "target user, not the service principal"
        );
        assert_eq!(s.operation, "Update user.");
        assert_eq!(s.ts_us, us("2024-03-19T09:00:00Z"));
        assert_eq!(
            s.kind,
            SaasKind::MfaChange {
                before: Some(1),
                after: Some(2),
                detail: "PhoneAppOTP added (1 -> 2 methods)".into()
            }
        );
        // Same list before and after (a default switched): not an MFA addition.
        let same = UPDATE_USER.replace(r#"\"MethodType\": 5"#, r#"\"MethodType\": 6"#).replace(
            r#""OldValue":"[\r\n  {\r\n    \"MethodType\": 6,\r\n    \"Default\": true\r\n  }\r\n]""#,
            r#""OldValue":"[{\"MethodType\":6},{\"MethodType\":6}]""#,
        );
        assert_eq!(saas_of(&same).kind, SaasKind::Other);
        // JSON-ish text cut short still counts.
        let cut = UPDATE_USER.replace(r#"    \"Default\": false\r\n  }\r\n]""#, r#"    \"Def""#);
        assert!(matches!(
            saas_of(&cut).kind,
            SaasKind::MfaChange {
                before: Some(1),
                after: Some(2),
                ..
            }
        ));
    }

    #[test]
    fn set_inbox_rule_with_forward_to_is_an_inbox_rule() {
        let s = saas_of(
            r#"{"CreationTime":"2024-03-20T10:00:00","Id":"a1","Operation":"Set-InboxRule","OrganizationId":"o","RecordType":1,
            "ResultStatus":"True","UserKey":"1003","UserType":0,"Version":1,"Workload":"Exchange","ClientIP":"[2001:db8::7]:50123",
            "ObjectId":"EURPR01A002.prod.outlook.com/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com/Alice\\Fwd all",
            "UserId":"Alice@contoso.com","AppId":"","ClientAppId":"","ExternalAccess":false,"OrganizationName":"contoso.onmicrosoft.com",
            "OriginatingServer":"AM0PR01MB1234 (15.20.7409.000)",
            "Parameters":[{"Name":"Identity","Value":"Alice\\Fwd all"},{"Name":"ForwardTo","Value":"evil@example.net"},{"Name":"StopProcessingRules","Value":true}]}"#,
        );
        assert_eq!(s.ip, ip("2001:db8::7"));
        assert_eq!(
            s.kind,
            SaasKind::InboxRule {
                name: "Fwd all".into(),
                params: vec![
                    ("Identity".into(), "Alice\\Fwd all".into()),
                    ("ForwardTo".into(), "evil@example.net".into()),
                    ("StopProcessingRules".into(), "True".into()),
                ],
            }
        );
    }

    #[test]
    fn new_inbox_rule_with_a_parameter_string() {
        let s = saas_of(
            r#"{"CreationTime":"2024-03-20T10:00:00","Id":"a2","Operation":"New-InboxRule","RecordType":1,"ResultStatus":"True",
            "UserId":"alice@contoso.com","ClientIP":"10.0.0.1","Parameters":"-Name \".\" -MoveToFolder \"RSS Feeds\" -MarkAsRead \"True\" -StopProcessingRules \"True\""}"#,
        );
        match s.kind {
            SaasKind::InboxRule { name, params } => {
                assert_eq!(name, ".");
                assert!(params.contains(&("MoveToFolder".into(), "RSS Feeds".into())));
                assert!(params.contains(&("MarkAsRead".into(), "True".into())));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_inbox_rules_reads_operation_properties() {
        let s = saas_of(
            r#"{"CreationTime":"2024-03-20T10:00:00","Id":"a3","Operation":"UpdateInboxRules","RecordType":2,"ResultStatus":"Succeeded",
            "UserId":"alice@contoso.com","ClientIPAddress":"193.222.96.91","MailboxOwnerUPN":"alice@contoso.com",
            "OperationProperties":[{"Name":"RuleActions","Value":"[{\"ActionType\":\"MoveToFolder\"}]"},{"Name":"RuleName","Value":"x"},
            {"Name":"RuleOperation","Value":"AddMailboxRule"}],"Item":{"ParentFolder":{"Path":"\\Inbox"}}}"#,
        );
        assert_eq!(s.ip, ip("193.222.96.91"));
        match s.kind {
            SaasKind::InboxRule { name, params } => {
                assert_eq!(name, "x");
                assert_eq!(params.len(), 3);
                assert_eq!(params[2], ("RuleOperation".into(), "AddMailboxRule".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_mailbox_forwarding() {
        let rec = r#"{"CreationTime":"2024-03-20T11:00:00","Id":"a4","Operation":"Set-Mailbox","RecordType":1,"ResultStatus":"True",
            "UserId":"alice@contoso.com","ObjectId":"alice","Parameters":[{"Name":"Identity","Value":"alice"},
            {"Name":"ForwardingSmtpAddress","Value":"smtp:Evil@Example.NET"},{"Name":"DeliverToMailboxAndForward","Value":"False"}]}"#;
        assert_eq!(
            saas_of(rec).kind,
            SaasKind::Forwarding {
                target: "evil@example.net".into()
            }
        );
        // Clearing forwarding, or a change that failed, is not forwarding.
        let cleared = rec.replace("smtp:Evil@Example.NET", "");
        assert_eq!(saas_of(&cleared).kind, SaasKind::Other);
        let failed = rec.replace(r#""ResultStatus":"True""#, r#""ResultStatus":"False""#);
        assert_eq!(saas_of(&failed).kind, SaasKind::Other);
    }

    #[test]
    fn logins_decide_success_from_the_error_code() {
        let failed = saas_of(
            r#"{"CreationTime":"2024-03-18T14:03:00","Id":"l1","Operation":"UserLoginFailed","RecordType":15,"ResultStatus":"Failed",
            "UserKey":"10032000C757D25F","UserId":"Alice@contoso.com","ClientIP":"193.222.96.91:50000","LogonError":"InvalidUserNameOrPassword",
            "ErrorNumber":"50126","InterSystemsId":"i-1","Workload":"AzureActiveDirectory"}"#,
        );
        assert_eq!(failed.ip, ip("193.222.96.91"));
        assert!(matches!(
            failed.kind,
            SaasKind::Login { success: false, ref error_code, .. } if error_code.as_deref() == Some("50126")
        ));
        // STS: ResultStatus "Succeeded" but ErrorNumber 50126 is a failed login.
        let sts = saas_of(
            r#"{"CreationTime":"2024-03-18T14:03:00","Id":"l2","Operation":"UserLoggedIn","RecordType":15,"ResultStatus":"Succeeded",
            "UserId":"alice@contoso.com","ClientIP":"::ffff:193.222.96.91","ErrorNumber":50126,"Workload":"AzureActiveDirectory",
            "ExtendedProperties":[{"Name":"UserAgent","Value":"Mozilla/5.0"},{"Name":"RequestType","Value":"OAuth2:Token"}]}"#,
        );
        assert_eq!(sts.ip, ip("193.222.96.91"));
        match sts.kind {
            SaasKind::Login {
                success,
                error_code,
                user_agent,
                ..
            } => {
                assert!(!success);
                assert_eq!(error_code.as_deref(), Some("50126"));
                assert_eq!(user_agent.as_deref(), Some("Mozilla/5.0"));
            }
            other => panic!("{other:?}"),
        }
        // No error number at all on UserLoggedIn: success.
        let ok = saas_of(
            r#"{"CreationTime":"2024-03-18T14:03:00","Operation":"UserLoggedIn","UserId":"alice@contoso.com","ResultStatus":"Succeeded"}"#,
        );
        assert!(matches!(
            ok.kind,
            SaasKind::Login {
                success: true,
                error_code: None,
                ..
            }
        ));
    }

    #[test]
    fn ual_user_falls_back_to_actor_upn_then_as_given() {
        let s = saas_of(
            r#"{"CreationTime":"2024-03-18T14:03:00","Operation":"UserLoggedIn","UserId":"21119711-1517-43d4-8138-b537dafad016",
            "Actor":[{"ID":"21119711-1517-43d4-8138-b537dafad016","Type":"0"},{"ID":"Root@Example.com","Type":"5"}]}"#,
        );
        assert_eq!(s.user, "root@example.com");
        let s = saas_of(
            r#"{"CreationTime":"2020-02-07T20:49:49","Operation":"Set-Mailbox","UserId":"NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)"}"#,
        );
        assert_eq!(
            s.user,
            "nt authority\\system (microsoft.exchange.servicehost)"
        );
        assert_eq!(s.kind, SaasKind::Other);
    }

    #[test]
    fn mail_access_and_send() {
        let s = saas_of(
            r#"{"CreationTime":"2024-03-20T12:00:00","Operation":"MailItemsAccessed","UserId":"alice@contoso.com","ResultStatus":"Succeeded",
            "OperationCount":9,"Folders":[{"FolderItems":[{"InternetMessageId":"<a>"},{"InternetMessageId":"<b>"}],"Path":"\\Inbox"},
            {"FolderItems":[{"InternetMessageId":"<c>"}],"Path":"\\Sent"}]}"#,
        );
        assert_eq!(s.kind, SaasKind::MailAccess { items: 3 });
        let s = saas_of(
            r#"{"CreationTime":"2024-03-20T12:00:00","Operation":"MailItemsAccessed","UserId":"alice@contoso.com","OperationCount":"9"}"#,
        );
        assert_eq!(s.kind, SaasKind::MailAccess { items: 9 });
        let s = saas_of(
            r#"{"CreationTime":"2024-03-20T12:00:00","Operation":"Send","UserId":"alice@contoso.com",
            "Item":{"Id":"x","Subject":"Prezi presentation","SizeInBytes":1234}}"#,
        );
        assert_eq!(
            s.kind,
            SaasKind::Send {
                subject: Some("Prezi presentation".into())
            }
        );
    }
}

//! Entra ID `SigninLogs` and `AuditLogs` in their Graph, Log Analytics and Azure Monitor
//! shapes.

use std::borrow::Cow;

use serde_json::Value;

use super::fields::{Obj, cap, ip_any, is_upn, norm_user, scalar, structured, time_field};
use super::ual::{is_mfa_op, is_update_user, mfa_change};
use super::{MAX_PARAMS, Outcome, Reject, done, saas};
use crate::ingest::record::{SaasKind, Schema};

pub(super) fn signin(row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<Outcome, Reject> {
    let ts_us = time_field(row, &["createdDateTime", "TimeGenerated"])
        .or_else(|| outer.and_then(|o| time_field(o, &["time"])))
        .unwrap_or(Err(Reject::Missing("createdDateTime")))?;
    let user = norm_user(&row.required_text(&["userPrincipalName"])?);
    let status = row.get("status").and_then(structured);
    let code = status
        .as_deref()
        .and_then(Value::as_object)
        .and_then(|m| Obj(m).text("errorCode").map(|c| c.trim().to_owned()))
        .or_else(|| row.text("ResultType").map(|c| c.trim().to_owned()))
        .or_else(|| {
            outer
                .and_then(|o| o.text("resultType"))
                .map(|c| c.trim().to_owned())
        })
        .ok_or(Reject::Missing("status.errorCode"))?;
    let location = row
        .get("location")
        .and_then(structured)
        .or_else(|| row.get("LocationDetails").and_then(structured));
    let loc = location.as_deref().and_then(Value::as_object).map(Obj);
    let country = loc
        .and_then(|l| l.nonempty("countryOrRegion"))
        .map(|c| cap(c.trim()))
        .or_else(|| short_country(row.get("location").and_then(scalar)))
        .or_else(|| short_country(outer.and_then(|o| o.text("location"))));
    let ip =
        ip_any(row, &["ipAddress"]).or_else(|| outer.and_then(|o| ip_any(o, &["callerIpAddress"])));
    let id = row.nonempty("id").map(|s| cap(&s)).unwrap_or_default();
    let mut ev = saas(ts_us, Schema::EntraSignin, id, user, ip);
    ev.operation = outer
        .and_then(|o| o.nonempty("operationName"))
        .map_or_else(|| "Sign-in activity".to_owned(), |s| cap(&s));
    ev.kind = SaasKind::Login {
        success: code == "0",
        error_code: Some(cap(&code)),
        country,
        city: loc.and_then(|l| l.nonempty("city")).map(|c| cap(c.trim())),
        geo: loc.and_then(geo),
        user_agent: row.nonempty("userAgent").map(|s| cap(&s)),
        correlation_id: row
            .nonempty("correlationId")
            .or_else(|| outer.and_then(|o| o.nonempty("correlationId")))
            .map(|s| cap(&s)),
    };
    done(ev)
}

/// A bare two-letter country code (Log Analytics `Location`, Azure Monitor `location`).
pub(super) fn short_country(s: Option<Cow<'_, str>>) -> Option<String> {
    let s = s?;
    let s = s.trim();
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_uppercase())
}

pub(super) fn geo(loc: Obj<'_>) -> Option<(f64, f64)> {
    let g = loc.get("geoCoordinates").and_then(structured)?;
    let g = Obj(g.as_object()?);
    let num = |v: &Value| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok());
    let lat = num(g.get("latitude")?)?;
    let lon = num(g.get("longitude")?)?;
    let ok = lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
    ok.then_some((lat, lon))
}

pub(super) fn audit(row: Obj<'_>, outer: Option<Obj<'_>>) -> Result<Outcome, Reject> {
    let ts_us = time_field(row, &["activityDateTime", "TimeGenerated"])
        .or_else(|| outer.and_then(|o| time_field(o, &["time"])))
        .unwrap_or(Err(Reject::Missing("activityDateTime")))?;
    let op = row
        .nonempty("activityDisplayName")
        .or_else(|| row.nonempty("OperationName"))
        .or_else(|| outer.and_then(|o| o.nonempty("operationName")))
        .ok_or(Reject::Missing("activityDisplayName"))?;
    let targets = row.get("targetResources").and_then(structured);
    let targets = targets
        .as_deref()
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let initiated = row.get("initiatedBy").and_then(structured);
    let initiator = initiated
        .as_deref()
        .and_then(Value::as_object)
        .and_then(|m| Obj(m).obj("user"));
    let Some(user) = target_upn(targets).or_else(|| {
        let upn = initiator?.text("userPrincipalName")?;
        is_upn(&upn).then(|| norm_user(&upn))
    }) else {
        return Ok(Outcome::Ignored(
            "AuditLogs record without a user".to_owned(),
        ));
    };
    let ip = initiator
        .and_then(|u| ip_any(u, &["ipAddress"]))
        .or_else(|| outer.and_then(|o| ip_any(o, &["callerIpAddress"])));
    let id = row.nonempty("id").map(|s| cap(&s)).unwrap_or_default();
    let mut ev = saas(ts_us, Schema::EntraAudit, id, user, ip);
    let failed = row.text("result").is_some_and(|r| {
        let r = r.trim();
        r.eq_ignore_ascii_case("failure") || r.eq_ignore_ascii_case("timeout")
    });
    let modified = || {
        targets.iter().take(MAX_PARAMS).find_map(|t| {
            t.as_object()
                .and_then(|m| mfa_change(Obj(m).get("modifiedProperties")))
        })
    };
    ev.kind = if failed {
        SaasKind::Other
    } else if is_mfa_op(&op) {
        let detail = row
            .nonempty("resultReason")
            .map_or_else(|| cap(&op), |r| cap(r.trim()));
        match modified() {
            Some(SaasKind::MfaChange { before, after, .. }) => SaasKind::MfaChange {
                before,
                after,
                detail,
            },
            _ => SaasKind::MfaChange {
                before: None,
                after: None,
                detail,
            },
        }
    } else if is_update_user(&op) {
        modified().unwrap_or(SaasKind::Other)
    } else {
        SaasKind::Other
    };
    ev.operation = cap(&op);
    done(ev)
}

/// The UPN of the target user (a `type: User` entry first, else any entry with a UPN).
pub(super) fn target_upn(targets: &[Value]) -> Option<String> {
    let mut any = None;
    for t in targets.iter().take(MAX_PARAMS) {
        let Some(t) = t.as_object().map(Obj) else {
            continue;
        };
        let Some(upn) = t.text("userPrincipalName").filter(|u| is_upn(u)) else {
            continue;
        };
        if t.text("type")
            .is_some_and(|k| k.eq_ignore_ascii_case("User"))
        {
            return Some(norm_user(&upn));
        }
        any.get_or_insert_with(|| norm_user(&upn));
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::test_util::*;
    use crate::ingest::parse::{Shape, classify, parse_value, visit};

    #[test]
    fn signin_graph_shape() {
        let s = saas_of(
            r#"{"id":"66ea54eb-6301-4ee5-be62-ff5a759b0100","createdDateTime":"2024-03-18T14:02:11.1234567Z",
            "userDisplayName":"Alice","userPrincipalName":"Alice@Contoso.com","userId":"0a1b","appDisplayName":"Office 365 Exchange Online",
            "ipAddress":"193.222.96.91","clientAppUsed":"Browser","correlationId":"d79f5bee-5860-4832-928f-3133e22ae912",
            "isInteractive":true,"status":{"errorCode":0,"failureReason":"Other.","additionalDetails":null},
            "location":{"city":"Amsterdam","state":"Noord-Holland","countryOrRegion":"NL",
            "geoCoordinates":{"altitude":null,"latitude":52.37403,"longitude":4.88969}},"userAgent":"Mozilla/5.0"}"#,
        );
        assert_eq!(s.schema, Schema::EntraSignin);
        assert_eq!(s.ts_us, us("2024-03-18T14:02:11.123456Z"));
        assert_eq!(s.user, "alice@contoso.com");
        assert_eq!(s.ip, ip("193.222.96.91"));
        assert_eq!(s.id, "66ea54eb-6301-4ee5-be62-ff5a759b0100");
        assert_eq!(s.operation, "Sign-in activity");
        assert_eq!(
            s.kind,
            SaasKind::Login {
                success: true,
                error_code: Some("0".into()),
                country: Some("NL".into()),
                city: Some("Amsterdam".into()),
                geo: Some((52.37403, 4.88969)),
                user_agent: Some("Mozilla/5.0".into()),
                correlation_id: Some("d79f5bee-5860-4832-928f-3133e22ae912".into()),
            }
        );
    }

    #[test]
    fn signin_log_analytics_shape_with_failure() {
        let s = saas_of(
            r#"{"TenantId":"t","SourceSystem":"Azure AD","TimeGenerated":"2024-03-18T14:02:11Z","OperationName":"Sign-in activity",
            "Category":"SignInLogs","ResultType":"50126","ResultDescription":"Invalid username or password","CorrelationId":"c-1",
            "Location":"NL","LocationDetails":"{\"city\":\"Amsterdam\",\"countryOrRegion\":\"NL\",\"geoCoordinates\":{\"latitude\":\"52.5\",\"longitude\":\"4.5\"}}",
            "IPAddress":"193.222.96.91","UserPrincipalName":"BOB@contoso.com","UserAgent":"curl/8","Id":"row-1","Type":"SigninLogs"}"#,
        );
        assert_eq!(s.user, "bob@contoso.com");
        assert_eq!(s.id, "row-1");
        match s.kind {
            SaasKind::Login {
                success,
                error_code,
                country,
                geo,
                correlation_id,
                ..
            } => {
                assert!(!success);
                assert_eq!(error_code.as_deref(), Some("50126"));
                assert_eq!(country.as_deref(), Some("NL"));
                assert_eq!(geo, Some((52.5, 4.5)));
                assert_eq!(correlation_id.as_deref(), Some("c-1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signin_azure_monitor_wrapper() {
        let s = saas_of(
            r#"{"time":"2024-03-18T14:02:11.0000000Z","resourceId":"/tenants/t/providers/Microsoft.aadiam",
            "operationName":"Sign-in activity","operationVersion":"1.0","category":"NonInteractiveUserSignInLogs","tenantId":"t",
            "resultType":"0","resultSignature":"None","durationMs":0,"callerIpAddress":"193.222.96.91","correlationId":"c-2",
            "identity":"Alice","Level":4,"location":"NL","properties":{"id":"p-1","userPrincipalName":"alice@contoso.com",
            "ipAddress":"","status":{"errorCode":50074},"location":{"city":"","countryOrRegion":"","geoCoordinates":{}}}}"#,
        );
        // No createdDateTime inside: the envelope's time is used; empty ipAddress -> callerIpAddress.
        assert_eq!(s.ts_us, us("2024-03-18T14:02:11Z"));
        assert_eq!(s.ip, ip("193.222.96.91"));
        assert_eq!(s.id, "p-1");
        match s.kind {
            SaasKind::Login {
                success,
                error_code,
                country,
                city,
                geo,
                correlation_id,
                ..
            } => {
                assert!(!success, "50074 is not success");
                assert_eq!(error_code.as_deref(), Some("50074"));
                assert_eq!(country.as_deref(), Some("NL"), "envelope location");
                assert_eq!(city, None);
                assert_eq!(geo, None);
                assert_eq!(correlation_id.as_deref(), Some("c-2"));
            }
            other => panic!("{other:?}"),
        }
    }

    const REGISTERED: &str = r#"{"id":"Directory_1","category":"UserManagement","correlationId":"c-3","result":"success",
        "resultReason":"User registered Authenticator App with Notification and Code","activityDisplayName":"User registered security info",
        "activityDateTime":"2024-03-19T09:00:00.5Z","loggedByService":"Authentication Methods","operationType":"Add",
        "initiatedBy":{"app":null,"user":{"id":"u1","displayName":null,"userPrincipalName":"Alice@contoso.com","ipAddress":"193.222.96.91"}},
        "targetResources":[{"id":"u1","displayName":null,"type":"User","userPrincipalName":"Alice@contoso.com","modifiedProperties":[]}],
        "additionalDetails":[]}"#;

    #[test]
    fn audit_security_info_registration_is_an_mfa_change() {
        let s = saas_of(REGISTERED);
        assert_eq!(s.schema, Schema::EntraAudit);
        assert_eq!(s.user, "alice@contoso.com");
        assert_eq!(s.ip, ip("193.222.96.91"));
        assert_eq!(s.operation, "User registered security info");
        assert_eq!(s.ts_us, us("2024-03-19T09:00:00.5Z"));
        assert_eq!(
            s.kind,
            SaasKind::MfaChange {
                before: None,
                after: None,
                detail: "User registered Authenticator App with Notification and Code".into()
            }
        );
        // The same record that failed is not a change.
        let failed = REGISTERED.replace(r#""result":"success""#, r#""result":"failure""#);
        assert_eq!(saas_of(&failed).kind, SaasKind::Other);
        // Wrapped by Azure Monitor, with the envelope's time.
        let wrapped = format!(
            r#"{{"time":"2024-03-19T09:00:01Z","category":"AuditLogs","operationName":"User registered security info","properties":{}}}"#,
            REGISTERED.replace(r#""activityDateTime":"2024-03-19T09:00:00.5Z","#, "")
        );
        let w = saas_of(&wrapped);
        assert_eq!(w.ts_us, us("2024-03-19T09:00:01Z"));
        assert!(matches!(w.kind, SaasKind::MfaChange { .. }));
    }

    #[test]
    fn audit_update_user_counts_methods_and_targets_the_user() {
        let s = saas_of(
            r#"{"id":"Directory_2","category":"UserManagement","result":"success","activityDisplayName":"Update user",
            "activityDateTime":"2022-06-21T23:25:00.1458248Z","initiatedBy":{"user":{"userPrincipalName":"tadmin@contoso.com","ipAddress":""}},
            "targetResources":[{"id":"x","type":"User","userPrincipalName":"tuser@contoso.com","modifiedProperties":[
            {"displayName":"StrongAuthenticationMethod","oldValue":"[{\"MethodType\":6,\"Default\":true},{\"MethodType\":7,\"Default\":false}]",
            "newValue":"[{\"MethodType\":7,\"Default\":false},{\"MethodType\":6,\"Default\":true},{\"MethodType\":0,\"Default\":false},{\"MethodType\":5,\"Default\":false}]"},
            {"displayName":"Included Updated Properties","oldValue":null,"newValue":"\"StrongAuthenticationMethod\""}]}]}"#,
        );
        assert_eq!(s.user, "tuser@contoso.com");
        assert_eq!(s.ip, None);
        assert_eq!(
            s.kind,
            SaasKind::MfaChange {
                before: Some(2),
                after: Some(4),
                detail: "method type 0, PhoneAppOTP added (2 -> 4 methods)".into()
            }
        );
    }

    #[test]
    fn audit_without_a_user_is_ignored() {
        let v: Value = serde_json::from_str(
            r#"{"id":"d","activityDisplayName":"Add service principal","activityDateTime":"2024-01-01T00:00:00Z",
            "initiatedBy":{"app":{"displayName":"x"}},"targetResources":[{"type":"ServicePrincipal","displayName":"app"}]}"#,
        )
        .unwrap();
        assert_eq!(classify(&v), Shape::Record(Schema::EntraAudit));
        assert_eq!(parse_value(&v), Ok(vec![]));
        let mut seen = Vec::new();
        visit(&v, &mut |r| seen.push(r));
        assert_eq!(
            seen,
            vec![Ok(Outcome::Ignored(
                "AuditLogs record without a user".into()
            ))]
        );
    }
}

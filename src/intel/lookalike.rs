//! Lookalikes of the organisation's own domains and of configured brands.
//!
//! A registrable domain looks like a protected name when its label (IDN decoded) has the same
//! Unicode confusable skeleton (UTS #39, `unicode-security`) without being the same name, is
//! within a small Damerau–Levenshtein distance of it, carries it as a hyphen-separated token
//! (`microsoft-login`), or when a subdomain label is the protected name on someone else's
//! domain (`microsoft.login-verify.top`). The protected names' own domains never match.
//!
//! The organisation's own name as a subdomain is how SaaS vendors name a customer's tenant
//! (`example.okta.com`, `example.vendor-crm.com`), so for org domains the subdomain rule needs
//! the whole domain inside the name (`example.com.verify-login.top`, `example.com-sso.top`);
//! brands keep the plain label rule.

use unicode_security::skeleton;

use super::names;

/// Labels shorter than this are not compared by edit distance (too many accidental hits).
const MIN_EDIT_LEN: usize = 5;

/// Protected names.
#[derive(Debug, Default, Clone)]
pub struct Protected {
    /// Registrable domains that are genuinely the organisation's or a brand's own.
    own: Vec<String>,
    /// (label, its skeleton, whether it is an org domain's label rather than a brand).
    labels: Vec<(String, String, bool)>,
    /// The organisation's own registrable domains.
    org: Vec<String>,
}

impl Protected {
    /// From org domains (`example.com`) and brand names (`microsoft` or `microsoft.com`).
    pub fn new(org_domains: &[String], brands: &[String]) -> Protected {
        let mut p = Protected::default();
        let all = org_domains
            .iter()
            .map(|d| (d, true))
            .chain(brands.iter().map(|b| (b, false)));
        for (d, is_org) in all {
            let Some(n) = names::normalise(d) else {
                continue;
            };
            let label = match names::registrable(&n) {
                Some(r) => {
                    p.own.push(r.to_string());
                    if is_org {
                        p.org.push(r.to_string());
                    }
                    names::registrable_label(r).to_string()
                }
                None => n.clone(),
            };
            let label = unicode_label(&label);
            if label.len() >= 3 && !p.labels.iter().any(|(l, _, _)| *l == label) {
                let sk = skel(&label);
                p.labels.push((label, sk, is_org));
            }
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Why `fqdn` (with registrable domain `reg`) looks like a protected name, if it does.
    pub fn check(&self, fqdn: &str, reg: &str) -> Option<String> {
        if self.labels.is_empty() || self.own.iter().any(|o| o == reg) {
            return None;
        }
        let label = unicode_label(names::registrable_label(reg));
        let sk = skel(&label);
        for (target, tsk, is_org) in &self.labels {
            if label == *target {
                // Same label on another suffix (microsoft.top): a classic lookalike.
                return Some(format!("uses the name {target} on another suffix"));
            }
            if sk == *tsk {
                return Some(format!("{label} is confusable with {target}"));
            }
            if label.chars().count() >= MIN_EDIT_LEN && target.chars().count() >= MIN_EDIT_LEN {
                let d = distance(&label, target);
                let max = if target.chars().count() >= 9 { 2 } else { 1 };
                if d <= max {
                    return Some(format!("{label} is {d} edit(s) from {target}"));
                }
            }
            if target.len() >= 4 && label.split('-').any(|t| t == target) {
                return Some(format!("{label} carries the name {target}"));
            }
            if target.len() >= 4 && names::sub_labels(fqdn, reg).any(|l| l == target) {
                if !*is_org {
                    return Some(format!("subdomain {target} on unrelated domain {reg}"));
                }
                // A tenant name on a vendor's domain, unless the whole org domain is there.
                let whole = self.org.iter().find(|o| {
                    let o = o.as_str();
                    fqdn.starts_with(&format!("{o}."))
                        || fqdn.starts_with(&format!("{o}-"))
                        || fqdn.contains(&format!(".{o}."))
                        || fqdn.contains(&format!(".{o}-"))
                });
                if let Some(o) = whole {
                    return Some(format!("{o} inside unrelated domain {reg}"));
                }
            }
        }
        None
    }
}

fn unicode_label(label: &str) -> String {
    if label.starts_with("xn--") {
        let (u, res) = idna::domain_to_unicode(label);
        if res.is_ok() {
            return u;
        }
    }
    label.to_string()
}

fn skel(s: &str) -> String {
    skeleton(s).flat_map(char::to_lowercase).collect()
}

/// Optimal string alignment distance (Damerau–Levenshtein with adjacent transpositions), over
/// chars; inputs are DNS labels (at most 63 bytes), so the table is small.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Protected {
        Protected::new(
            &["example-corp.com".into()],
            &["microsoft".into(), "paypal.com".into()],
        )
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("microsoft", "microsoft"), 0);
        assert_eq!(distance("rnicrosoft", "microsoft"), 2);
        assert_eq!(distance("micorsoft", "microsoft"), 1);
        assert_eq!(distance("paypa1", "paypal"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn lookalikes_are_found() {
        let p = p();
        assert!(p.check("login.micorsoft.com", "micorsoft.com").is_some());
        assert!(p.check("paypa1.com", "paypa1.com").is_some());
        assert!(p.check("examp1e-corp.com", "examp1e-corp.com").is_some());
        assert!(
            p.check("microsoft-login.top", "microsoft-login.top")
                .is_some()
        );
        assert!(
            p.check("microsoft.verify-now.top", "verify-now.top")
                .is_some()
        );
        assert!(p.check("microsoft.top", "microsoft.top").is_some());
        // Cyrillic 'а' in paypal, as punycode.
        let cyr = crate::intel::names::normalise("pаypal.com").unwrap();
        assert!(cyr.starts_with("xn--"));
        let why = p.check(&cyr, &cyr).unwrap();
        assert!(why.contains("confusable") || why.contains("edit"), "{why}");
    }

    #[test]
    fn own_and_unrelated_domains_are_not() {
        let p = p();
        assert_eq!(p.check("www.paypal.com", "paypal.com"), None);
        assert_eq!(p.check("mail.example-corp.com", "example-corp.com"), None);
        assert_eq!(p.check("www.wikipedia.org", "wikipedia.org"), None);
        assert_eq!(p.check("thecalebgroup.top", "thecalebgroup.top"), None);
        assert_eq!(Protected::new(&[], &[]).check("a.com", "a.com"), None);
        // The organisation's tenant on a vendor's domain.
        assert_eq!(
            p.check("example-corp.bluepeak-crm.com", "bluepeak-crm.com"),
            None
        );
    }

    #[test]
    fn the_whole_org_domain_inside_another_name_is_a_lookalike() {
        let p = p();
        let why = p
            .check("example-corp.com.verify-login.top", "verify-login.top")
            .unwrap();
        assert!(why.contains("example-corp.com"), "{why}");
        assert!(
            p.check("sso.example-corp.com-login.top", "com-login.top")
                .is_some()
        );
        // Brands keep the plain subdomain rule.
        assert!(
            p.check("paypal.account-check.top", "account-check.top")
                .is_some()
        );
    }
}

//! Logins: the per-user and organisation-wide source baselines, the
//! [`UNUSUAL_SOURCE`] judgement (new ASN / country / network, impossible travel, routine
//! sources of other users, failed logins and suspect domains as context), and the pairing of
//! unusual logins with MFA changes ([`LOGIN_AND_ACCOUNT_UPDATE`]) and anomalous rules
//! ([`LOGIN_AND_RULE`]) whichever arrives second.
//!
//! Limits: [`MAX_SOURCES_PER_USER`] sources per user and [`MAX_USERS_PER_ORG_SOURCE`] users
//! per organisation source (the entries least able to make a source routine are replaced),
//! [`MAX_ORG_SOURCES`] sources, [`MAX_PENDING`] unusual logins and MFA changes per user, at
//! most [`MAX_HINTS`] domain hints per breach. Distances and speeds are computed from stored
//! micro-degrees, so a restored state judges exactly as before.

use super::*;

// -- Baselines -------------------------------------------------------------------------------

/// Adds one use of `src` at `ts` to `list`; returns how many entries were evicted. When full,
/// the entry that matters least goes: stale ones first (unused for `keep_us`), then fewest
/// days of use, then least recent. A burst of one-off networks (a roaming phone, an attacker
/// cycling addresses) churns among itself instead of pushing out the office.
fn touch_source(list: &mut Vec<SourceSeen>, src: Source, ts: u64, keep_us: u64) -> u64 {
    let day = day_of(ts);
    if let Some(s) = list.iter_mut().find(|s| s.src == src) {
        if day > s.last_day || day < s.first_day {
            s.days = s.days.saturating_add(1);
        }
        s.first_day = s.first_day.min(day);
        s.last_day = s.last_day.max(day);
        s.last_us = s.last_us.max(ts);
        return 0;
    }
    list.push(SourceSeen {
        src,
        last_us: ts,
        first_day: day,
        last_day: day,
        days: 1,
    });
    if list.len() <= MAX_SOURCES_PER_USER {
        return 0;
    }
    // The entry just added is exempt: it is the login being recorded.
    let worth = |s: &SourceSeen| {
        let fresh = s.last_us.saturating_add(keep_us) >= ts;
        (fresh, s.days, s.last_us, s.src)
    };
    let last = list.len() - 1;
    if let Some(i) = (0..last).min_by_key(|&i| list.get(i).map(worth)) {
        list.remove(i);
    }
    1
}

impl OrgSource {
    /// Adds one use by `user`. When the list is full, the entry least able to make the source
    /// routine goes: stale ones first (not seen within `keep_us`), then fewest days, then least
    /// recent. So users who sign in from it routinely stay, and newcomers churn among
    /// themselves.
    fn touch(&mut self, user: &str, ts: u64, keep_us: u64) {
        self.last_us = self.last_us.max(ts);
        let day = day_of(ts);
        if let Some(u) = self.users.iter_mut().find(|u| u.user == user) {
            if day > u.last_day || day < u.first_day {
                u.days = u.days.saturating_add(1);
            }
            u.first_day = u.first_day.min(day);
            u.last_day = u.last_day.max(day);
            u.last_us = u.last_us.max(ts);
            return;
        }
        if self.users.len() >= MAX_USERS_PER_ORG_SOURCE {
            let worth = |u: &OrgUser| {
                let fresh = u.last_us.saturating_add(keep_us) >= ts;
                (fresh, u.days, u.last_us, u.user.clone())
            };
            if let Some(i) = (0..self.users.len()).min_by_key(|&i| self.users.get(i).map(worth)) {
                self.users.remove(i);
            }
        }
        self.users.push(OrgUser {
            user: user.to_string(),
            last_us: ts,
            first_day: day,
            last_day: day,
            days: 1,
        });
    }
}

impl UserState {
    /// Whether the baseline has any source of this kind recent enough to judge by.
    fn has_dim(&self, dim: Dim, ts: u64, s: &SaasSettings) -> bool {
        self.sources
            .iter()
            .any(|x| x.src.dim() == dim && ts <= x.last_us.saturating_add(s.established_window_us))
    }

    fn knows(&self, src: Source, ts: u64, window: u64, s: &SaasSettings) -> bool {
        self.sources.iter().any(|x| {
            x.src == src
                && (ts <= x.last_us.saturating_add(window)
                    || (x.days >= s.established_days
                        && ts <= x.last_us.saturating_add(s.established_window_us)))
        })
    }

    /// Used on several days recently: its geolocation is a known place, not travel.
    fn established(&self, src: Source, ts: u64, s: &SaasSettings) -> bool {
        self.sources.iter().any(|x| {
            x.src == src
                && x.days >= s.org_routine_days
                && ts <= x.last_us.saturating_add(s.established_window_us)
        })
    }

    /// "US only", "AS64500, AS21928", "a, b, c, d and 3 more".
    fn seen_list(&self, dim: Dim, ts: u64, s: &SaasSettings) -> String {
        let mut v: Vec<&SourceSeen> = self
            .sources
            .iter()
            .filter(|x| {
                x.src.dim() == dim && ts <= x.last_us.saturating_add(s.established_window_us)
            })
            .collect();
        v.sort_by(|a, b| b.days.cmp(&a.days).then(a.src.cmp(&b.src)));
        let names: Vec<String> = v.iter().take(4).map(|x| x.src.to_string()).collect();
        match (names.len(), v.len()) {
            (0, _) => "nothing".to_string(),
            (1, 1) => format!("{} only", names.join("")),
            (n, total) if total > n => format!("{} and {} more", names.join(", "), total - n),
            _ => names.join(", "),
        }
    }
}

impl SaasModels {
    // -- Access -----------------------------------------------------------------------------

    pub(super) fn login(
        &mut self,
        ev: &SaasEvent,
        user: &str,
        info: LoginInfo<'_>,
        ctx: &mut dyn Context,
        out: &mut Vec<ModelBreach>,
    ) {
        let learning = self.learning(ev.ts_us);
        let s = &self.settings;
        let st = &mut self.state;
        let ts = ev.ts_us;
        if !info.success {
            // Context only, and only for users we already know: a spray against made-up names
            // must not push real users out.
            st.counters.failed_logins += 1;
            if let (Some(ip), Some(u)) = (ev.ip, st.users.get_mut(user)) {
                push_capped(
                    &mut u.failures,
                    (ts, plain(ip)),
                    MAX_FAILURES,
                    &mut st.counters.trimmed,
                );
            }
            return;
        }
        st.counters.logins += 1;
        let Some(ip) = ev.ip.map(plain) else {
            st.counters.logins_without_ip += 1;
            return;
        };
        let geo = ctx.geo(ip).unwrap_or_default();
        let l = Login {
            ts,
            ip,
            net: Source::net(ip),
            asn: geo.asn.map(Source::Asn),
            as_org: geo.as_org.as_deref().map(|o| clip(o, 48)),
            country: info
                .country
                .and_then(Source::country)
                .or_else(|| geo.country.as_deref().and_then(Source::country)),
            at: info
                .geo
                .and_then(micro_degrees)
                .or_else(|| geo.lat_lon.and_then(micro_degrees)),
            corr: info.corr.filter(|c| !c.is_empty()).map(|c| clip(c, 64)),
        };
        let users_seen = st.users.len();
        let u = user_entry(&mut st.users, &mut st.counters, s.max_users, user);
        u.last_us = u.last_us.max(ts);
        let dup = u.logins.iter().any(|x| {
            x.ip == ip
                && (x.ts.abs_diff(ts) <= s.login_dedup_us || (l.corr.is_some() && x.corr == l.corr))
        });
        let judgement = if dup || learning {
            None
        } else {
            u.first_login_us
                .filter(|f| ts >= f.saturating_add(s.user_learning_us))
                .map(|_| judge(u, &st.org, &l, user, s, users_seen))
        };
        // Baseline: the user's and the organisation's.
        for src in [Some(l.net), l.asn, l.country].into_iter().flatten() {
            st.counters.evicted_sources +=
                touch_source(&mut u.sources, src, ts, s.established_window_us);
            let key = src.key();
            if !st.org.contains_key(&key) {
                st.counters.evicted_org_sources +=
                    evict_lru(&mut st.org, MAX_ORG_SOURCES, |o| o.last_us);
            }
            let keep = s
                .asn_window_us
                .max(s.country_window_us)
                .max(s.net_window_us);
            st.org.entry(key).or_default().touch(user, ts, keep);
        }
        if dup {
            st.counters.login_dedup += 1;
            return;
        }
        u.first_login_us = Some(u.first_login_us.map_or(ts, |f| f.min(ts)));
        push_capped(
            &mut u.logins,
            LoginSeen {
                ts,
                ip,
                corr: l.corr.clone(),
            },
            MAX_RECENT_LOGINS,
            &mut st.counters.trimmed,
        );
        if let Some(at) = l.at
            && u.located.as_ref().is_none_or(|p| ts >= p.ts)
        {
            u.located = Some(Located {
                ts,
                ip,
                at,
                country: l.country,
            });
        }
        u.expire(s);
        let Some(j) = judgement.filter(|j| !j.reasons.is_empty()) else {
            return;
        };

        let mut b = new_breach(UNUSUAL_SOURCE, ts, user);
        b.ip = Some(ip);
        b.reasons = j.reasons;
        let mut score = j.score;
        let hints = ctx.suspect_domains_on(ip, ts);
        for (i, h) in hints.iter().take(MAX_HINTS).enumerate() {
            if i == 0 {
                score += 20 + u32::from(h.score) / 10;
                b.domain = Some(clip(&h.domain, MAX_TEXT));
                b.fqdn = Some(clip(&h.fqdn, MAX_TEXT));
            }
            if let Some(d) = h.device
                && !b.devices.contains(&d)
            {
                b.devices.push(d);
            }
            b.reasons.push(hint_reason(ip, h, ts));
        }
        b.score = cap_score(score);
        let label = login_label(&l);
        let mut un = Unusual {
            ts,
            ip,
            label,
            mfa_done: false,
        };
        emit(&mut st.counters, out, b);

        // Follow-ups that arrived before this (late) login.
        if let Some(m) = u
            .mfa
            .iter_mut()
            .filter(|m| !m.paired && follows(ts, m.ts, s))
            .min_by_key(|m| m.ts)
        {
            m.paired = true;
            un.mfa_done = true;
            emit(&mut st.counters, out, account_update(user, &un, m));
        }
        for a in u
            .anomalous
            .iter_mut()
            .filter(|a| !a.paired && follows(ts, a.ts, s))
        {
            a.paired = true;
            emit(&mut st.counters, out, login_and_rule(user, &un, a));
        }
        push_capped(&mut u.unusual, un, MAX_PENDING, &mut st.counters.trimmed);
    }

    // -- Account update ---------------------------------------------------------------------

    pub(super) fn mfa(
        &mut self,
        ev: &SaasEvent,
        user: &str,
        (before, after): (Option<u32>, Option<u32>),
        detail: &str,
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let st = &mut self.state;
        let ts = ev.ts_us;
        st.counters.mfa_changes += 1;
        if let (Some(b), Some(a)) = (before, after)
            && a <= b
        {
            st.counters.mfa_not_added += 1;
            return;
        }
        let u = user_entry(&mut st.users, &mut st.counters, s.max_users, user);
        u.last_us = u.last_us.max(ts);
        u.expire(s);
        if u.mfa.iter().any(|m| m.ts.abs_diff(ts) <= s.mfa_dedup_us) {
            st.counters.mfa_dedup += 1;
            return;
        }
        let mut m = MfaSeen {
            ts,
            ip: ev.ip.map(plain),
            detail: clip(
                if detail.is_empty() {
                    &ev.operation
                } else {
                    detail
                },
                MAX_TEXT,
            ),
            paired: false,
        };
        if let Some(i) = latest_unusual(&u.unusual, ts, s, |x| !x.mfa_done) {
            // One report per unusual login: mark every login this change follows.
            for x in u.unusual.iter_mut().filter(|x| follows(x.ts, ts, s)) {
                x.mfa_done = true;
            }
            if let Some(un) = u.unusual.get(i) {
                m.paired = true;
                emit(&mut st.counters, out, account_update(user, un, &m));
            }
        }
        push_capped(&mut u.mfa, m, MAX_PENDING, &mut st.counters.trimmed);
    }
}

// -- Judging a login ------------------------------------------------------------------------------

/// Success and location fields of a login record.
pub(super) struct LoginInfo<'a> {
    pub(super) success: bool,
    pub(super) country: Option<&'a str>,
    pub(super) geo: Option<(f64, f64)>,
    pub(super) corr: Option<&'a str>,
}

/// A successful login with everything known about its source.
struct Login {
    ts: u64,
    ip: IpAddr,
    net: Source,
    asn: Option<Source>,
    as_org: Option<String>,
    country: Option<Source>,
    at: Option<(i32, i32)>,
    corr: Option<String>,
}

/// Why a login is unusual (no reasons: it is not).
struct Judgement {
    reasons: Vec<String>,
    score: u32,
}

/// Judges one login against the user's baseline (before the login is added to it).
fn judge(
    u: &UserState,
    org: &HashMap<String, OrgSource>,
    l: &Login,
    user: &str,
    s: &SaasSettings,
    users_seen: usize,
) -> Judgement {
    let routine =
        |src: Source, window: u64| org_routine(org, src, user, l.ts, window, s, users_seen);
    let mut new = Vec::new();
    let mut judged = false;
    let dims = [(l.asn, s.asn_window_us), (l.country, s.country_window_us)];
    for (src, window) in dims {
        let Some(src) = src else { continue };
        if !u.has_dim(src.dim(), l.ts, s) {
            continue;
        }
        judged = true;
        if !u.knows(src, l.ts, window, s) && !routine(src, window) {
            new.push((src, window));
        }
    }
    if !judged
        && u.has_dim(Dim::Net, l.ts, s)
        && !u.knows(l.net, l.ts, s.net_window_us, s)
        && !routine(l.net, s.net_window_us)
    {
        new.push((l.net, s.net_window_us));
    }
    let mut reasons = Vec::new();
    let mut score = 0u32;
    for &(src, window) in &new {
        let seen = u.seen_list(src.dim(), l.ts, s);
        let label = if src.dim() == Dim::Country {
            src.to_string()
        } else {
            login_label(l)
        };
        reasons.push(if u.sources.iter().any(|x| x.src == src) {
            format!(
                "{src} not used by this user in the last {}; recent: {seen}",
                span(window)
            )
        } else if src.dim() == Dim::Country {
            format!(
                "first successful login from {} ({label}) for this user; seen before: {seen}",
                l.ip
            )
        } else {
            format!(
                "first successful login from {} ({src}) for this user; seen before: {seen}",
                l.ip
            )
        });
        score = score.max(match src.dim() {
            Dim::Country => 60,
            Dim::Asn => 50,
            Dim::Net => 40,
        });
    }
    if new.len() > 1 {
        score += 10;
    }
    // Impossible travel, unless this login's network is a known place (the user's own
    // established network, or one the organisation uses routinely: VPN, mobile carrier).
    if let (Some(at), Some(prev)) = (l.at, u.located.as_ref())
        && prev.ip != l.ip
    {
        let known_place = [
            Some((l.net, s.net_window_us)),
            l.asn.map(|a| (a, s.asn_window_us)),
        ]
        .into_iter()
        .flatten()
        .any(|(src, w)| u.established(src, l.ts, s) || routine(src, w));
        let km = km_between(prev.at, at);
        let hours = prev.ts.abs_diff(l.ts) as f64 / HOUR as f64;
        let kmh = if hours > 0.0 {
            km / hours
        } else {
            f64::INFINITY
        };
        if !known_place && km >= s.travel_km && kmh >= s.travel_kmh {
            let from = match prev.country {
                Some(c) => format!("{} ({c})", prev.ip),
                None => prev.ip.to_string(),
            };
            let speed = if kmh.is_finite() {
                format!("{} km/h", thousands(kmh as u64))
            } else {
                "at the same moment".to_string()
            };
            reasons.push(format!(
                "impossible travel: {} km from {from} {} {} ({speed})",
                thousands(km as u64),
                span(prev.ts.abs_diff(l.ts)),
                if prev.ts <= l.ts { "earlier" } else { "later" },
            ));
            score = if score == 0 { 60 } else { score + 15 };
        }
    }
    if !reasons.is_empty() {
        let failures = u
            .failures
            .iter()
            .filter(|f| f.1 == l.ip && f.0 <= l.ts && l.ts - f.0 <= FAILURE_LOOKBACK_US)
            .count();
        if failures > 0 {
            reasons.push(format!(
                "after {failures} failed logins for this user from {} in the preceding 24 h",
                l.ip
            ));
            score += 10;
        }
    }
    Judgement { reasons, score }
}

/// Whether enough other users sign in from `src` routinely (on several days, recently).
fn org_routine(
    org: &HashMap<String, OrgSource>,
    src: Source,
    user: &str,
    ts: u64,
    window: u64,
    s: &SaasSettings,
    users_seen: usize,
) -> bool {
    let Some(o) = org.get(&src.key()) else {
        return false;
    };
    let n = o
        .users
        .iter()
        .filter(|x| {
            x.user != user && x.days >= s.org_routine_days && ts <= x.last_us.saturating_add(window)
        })
        .count();
    n >= s.org_routine_users as usize
        || (n >= 2 && n as f64 >= s.org_routine_share * users_seen as f64)
}

fn login_label(l: &Login) -> String {
    let mut parts = Vec::new();
    if let Some(c) = l.country {
        parts.push(c.to_string());
    }
    if let Some(a) = l.asn {
        parts.push(match &l.as_org {
            Some(o) => format!("{a} {o}"),
            None => a.to_string(),
        });
    }
    if parts.is_empty() {
        l.ip.to_string()
    } else {
        format!("{} ({})", l.ip, parts.join(", "))
    }
}

fn hint_reason(ip: IpAddr, h: &DomainHint, ts: u64) -> String {
    let name = if h.fqdn.is_empty() {
        &h.domain
    } else {
        &h.fqdn
    };
    let mut r = format!(
        "{ip} hosts {} (young or rare domain, score {})",
        clip(name, MAX_TEXT),
        h.score
    );
    if let Some(d) = h.device {
        let when = if h.ts_us <= ts {
            format!("{} earlier", span(ts - h.ts_us))
        } else {
            format!("{} later", span(h.ts_us - ts))
        };
        r.push_str(&format!(", contacted by {d} {when}"));
    }
    r
}

// -- Pairing --------------------------------------------------------------------------------------

/// Whether `later` (an MFA change, a rule) falls in the follow-up window of a login at `login`.
fn follows(login: u64, later: u64, s: &SaasSettings) -> bool {
    later.saturating_add(s.pair_skew_us) >= login
        && later <= login.saturating_add(s.followup_window_us)
}

/// The most recent unusual login that `ts` follows and `ok` accepts.
pub(super) fn latest_unusual(
    list: &[Unusual],
    ts: u64,
    s: &SaasSettings,
    ok: impl Fn(&Unusual) -> bool,
) -> Option<usize> {
    (0..list.len())
        .filter(|&i| list.get(i).is_some_and(|x| ok(x) && follows(x.ts, ts, s)))
        .max_by_key(|&i| list.get(i).map(|x| x.ts))
}

fn account_update(user: &str, un: &Unusual, m: &MfaSeen) -> ModelBreach {
    let mut b = new_breach(LOGIN_AND_ACCOUNT_UPDATE, un.ts.max(m.ts), user);
    b.ip = Some(un.ip);
    b.score = 85;
    let mut r = format!("security info changed: {}", m.detail);
    if let Some(ip) = m.ip {
        r.push_str(&format!(" (from {ip})"));
    }
    b.reasons.push(r);
    b.reasons.push(format!(
        "{} {} an unusual login from {}",
        span(un.ts.abs_diff(m.ts)),
        if m.ts >= un.ts { "after" } else { "before" },
        un.label
    ));
    b
}

pub(super) fn login_and_rule(user: &str, un: &Unusual, a: &Anomalous) -> ModelBreach {
    let mut b = new_breach(LOGIN_AND_RULE, un.ts.max(a.ts), user);
    b.ip = Some(un.ip);
    b.rule = a.rule.clone();
    b.score = 90;
    b.reasons.push(format!(
        "{} set {} {} an unusual login from {}",
        a.what,
        span(un.ts.abs_diff(a.ts)),
        if a.ts >= un.ts { "after" } else { "before" },
        un.label
    ));
    if let Some(ip) = a.ip
        && ip != un.ip
    {
        b.reasons
            .push(format!("the change came from another address: {ip}"));
    }
    b
}

// -- Geography ------------------------------------------------------------------------------------

/// Valid coordinates as micro-degrees; None for non-finite, out-of-range or (0, 0).
fn micro_degrees((lat, lon): (f64, f64)) -> Option<(i32, i32)> {
    let ok = lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
        && !(lat == 0.0 && lon == 0.0);
    ok.then(|| ((lat * 1e6).round() as i32, (lon * 1e6).round() as i32))
}

/// Great-circle distance in km.
fn km_between(a: (i32, i32), b: (i32, i32)) -> f64 {
    let deg = |v: i32| f64::from(v) / 1e6;
    let (la1, lo1, la2, lo2) = (deg(a.0), deg(a.1), deg(b.0), deg(b.1));
    let dlat = (la2 - la1).to_radians();
    let dlon = (lo2 - lo1).to_radians();
    let h = (dlat / 2.0).sin().powi(2)
        + la1.to_radians().cos() * la2.to_radians().cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().min(1.0).asin()
}

//! Local feed files: registration dates of newly registered domains (NRD feeds) and a
//! popularity list (Tranco's `rank,domain` CSV).
//!
//! NRD lines are `domain` (listed, date unknown: treated as registered within the feed's
//! window) or `domain,YYYY-MM-DD` (more columns are ignored). Blank lines and `#` comments are
//! skipped. A bad line (not a host name, not a date) is counted and reported with `file:line`;
//! the rest of the file is loaded. Both tables are bounded (`max_entries`); lines past the cap
//! are counted as dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::names;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn parse_day(s: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days())
}

/// What a feed says about a domain's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Listed in an NRD feed without a date.
    Listed,
    /// Registered on this day (days since the epoch).
    On(i64),
}

/// Problems met while loading, for the log and `stats`.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub loaded: u64,
    pub bad_lines: u64,
    pub dropped: u64,
    /// The first few problems as `file:line: why`.
    pub messages: Vec<String>,
}

impl LoadReport {
    fn bad(&mut self, path: &Path, line: usize, why: &str) {
        self.bad_lines += 1;
        if self.messages.len() < 20 {
            self.messages
                .push(format!("{}:{}: {why}", path.display(), line + 1));
        }
    }
}

/// Registration knowledge from feed files.
#[derive(Debug, Default)]
pub struct Registrations {
    map: HashMap<String, Registered>,
}

impl Registrations {
    /// Loads every file; unreadable files and bad lines go into the report.
    pub fn load(files: &[PathBuf], max_entries: usize, report: &mut LoadReport) -> Registrations {
        let mut r = Registrations::default();
        for f in files {
            match std::fs::read_to_string(f) {
                Ok(text) => r.add_text(f, &text, max_entries, report),
                Err(e) => {
                    report.bad_lines += 1;
                    report.messages.push(format!("{}: {e}", f.display()));
                }
            }
        }
        r
    }

    /// Adds the lines of one feed.
    pub fn add_text(&mut self, path: &Path, text: &str, max_entries: usize, rep: &mut LoadReport) {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split([',', '\t']);
            let name = cols.next().unwrap_or("");
            let Some(name) = names::normalise(name) else {
                rep.bad(path, i, "not a domain name");
                continue;
            };
            let reg = match cols.next().map(str::trim) {
                None | Some("") => Registered::Listed,
                Some(d) => match parse_day(d) {
                    Some(day) => Registered::On(day),
                    None => {
                        rep.bad(path, i, "date is not YYYY-MM-DD");
                        continue;
                    }
                },
            };
            // Feeds list registrable domains; a listed FQDN is reduced to its registrable part.
            let key = names::registrable(&name).map(str::to_owned).unwrap_or(name);
            if self.map.len() >= max_entries && !self.map.contains_key(&key) {
                rep.dropped += 1;
                continue;
            }
            // With several entries, the oldest date wins (an old date means the domain is old).
            let e = self.map.entry(key).or_insert(reg);
            if let (Registered::On(old), Registered::On(new)) = (*e, reg) {
                *e = Registered::On(old.min(new));
            } else if let Registered::On(_) = reg {
                *e = reg;
            }
            rep.loaded += 1;
        }
    }

    pub fn get(&self, registrable: &str) -> Option<Registered> {
        self.map.get(registrable).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A popularity list: registrable domain -> rank.
#[derive(Debug, Default)]
pub struct Popularity {
    map: HashMap<String, u32>,
}

impl Popularity {
    /// Loads a Tranco-format file, keeping ranks up to `max_rank`.
    pub fn load(path: Option<&Path>, max_rank: u32, report: &mut LoadReport) -> Popularity {
        let mut p = Popularity::default();
        if let Some(path) = path {
            match std::fs::read_to_string(path) {
                Ok(text) => p.add_text(path, &text, max_rank, report),
                Err(e) => {
                    report.bad_lines += 1;
                    report.messages.push(format!("{}: {e}", path.display()));
                }
            }
        }
        p
    }

    pub fn add_text(&mut self, path: &Path, text: &str, max_rank: u32, rep: &mut LoadReport) {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((rank, name)) = line.split_once(',') else {
                rep.bad(path, i, "expected rank,domain");
                continue;
            };
            let (Ok(rank), Some(name)) = (rank.trim().parse::<u32>(), names::normalise(name))
            else {
                rep.bad(path, i, "expected rank,domain");
                continue;
            };
            if rank > max_rank {
                rep.dropped += 1;
                continue;
            }
            let key = names::registrable(&name).map(str::to_owned).unwrap_or(name);
            let r = self.map.entry(key).or_insert(rank);
            *r = (*r).min(rank);
            rep.loaded += 1;
        }
    }

    pub fn rank(&self, registrable: &str) -> Option<u32> {
        self.map.get(registrable).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nrd_feed_lines_and_bad_lines() {
        let mut rep = LoadReport::default();
        let mut r = Registrations::default();
        let text = "# nrd\nlatovafineart.life,2024-03-14\nthecalebgroup.top\nbad name,2024-01-01\n\
                    ok.example,2024-13-40\nWWW.Old.COM,2001-05-06\nold.com,2010-01-01\n";
        r.add_text(Path::new("feed.csv"), text, 100, &mut rep);
        assert_eq!(r.get("latovafineart.life"), Some(Registered::On(19796)));
        assert_eq!(r.get("thecalebgroup.top"), Some(Registered::Listed));
        assert_eq!(
            r.get("old.com"),
            parse_day("2001-05-06").map(Registered::On)
        );
        assert_eq!(rep.bad_lines, 2);
        assert_eq!(rep.messages[0], "feed.csv:4: not a domain name");
        assert_eq!(rep.messages[1], "feed.csv:5: date is not YYYY-MM-DD");
        assert_eq!(rep.loaded, 4);
    }

    #[test]
    fn feeds_are_bounded() {
        let mut rep = LoadReport::default();
        let mut r = Registrations::default();
        let text: String = (0..50).map(|i| format!("d{i}.com\n")).collect();
        r.add_text(Path::new("f"), &text, 10, &mut rep);
        assert_eq!(r.len(), 10);
        assert_eq!(rep.dropped, 40);
    }

    #[test]
    fn tranco_list() {
        let mut rep = LoadReport::default();
        let mut p = Popularity::default();
        p.add_text(
            Path::new("top.csv"),
            "1,google.com\n2,www.facebook.com\nx,bad\n900,rare.com\n",
            100,
            &mut rep,
        );
        assert_eq!(p.rank("google.com"), Some(1));
        assert_eq!(p.rank("facebook.com"), Some(2));
        assert_eq!(p.rank("rare.com"), None);
        assert_eq!(rep.bad_lines, 1);
        assert_eq!(rep.dropped, 1);
    }

    #[test]
    fn missing_file_is_reported() {
        let mut rep = LoadReport::default();
        let r = Registrations::load(&[PathBuf::from("/nonexistent/feed")], 10, &mut rep);
        assert!(r.is_empty());
        assert_eq!(rep.bad_lines, 1);
    }
}

//! Incidents on disk: `<state>/incidents/<id>.json`, one file per incident, rewritten
//! atomically by the analyzer at every new version. Readers (`crosswire incidents`, `report`)
//! need no lock on the state store, so they work while the sensor runs.

use std::path::{Path, PathBuf};

use super::{Incident, Severity};

/// Incident files read at most (newest first by modification time beyond that is not needed:
/// the engine keeps far fewer).
pub const MAX_FILES: usize = 10_000;
/// Largest incident file read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

fn dir(state: &Path) -> PathBuf {
    state.join("incidents")
}

fn read(path: &Path) -> Option<Incident> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_FILE_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Every incident in the state directory, oldest first; incidents merged into another one
/// are left out (the survivor lists them in `merged`).
pub fn list(state: &Path) -> Vec<Incident> {
    let Ok(rd) = std::fs::read_dir(dir(state)) else {
        return Vec::new();
    };
    let mut v: Vec<Incident> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .take(MAX_FILES)
        .filter_map(|p| read(&p))
        .collect();
    let merged: std::collections::HashSet<String> =
        v.iter().flat_map(|i| i.merged.iter().cloned()).collect();
    v.retain(|i| !merged.contains(&i.id));
    v.sort_by(|a, b| (a.first_ts, &a.id).cmp(&(b.first_ts, &b.id)));
    v
}

/// One incident by id (or by an unambiguous id prefix).
pub fn get(state: &Path, id: &str) -> Result<Incident, String> {
    let all = list(state);
    if let Some(i) = all.iter().find(|i| i.id == id) {
        return Ok(i.clone());
    }
    let hits: Vec<&Incident> = all.iter().filter(|i| i.id.starts_with(id)).collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "no incident {id} in {} ({} incidents there)",
            dir(state).display(),
            all.len()
        )),
        _ => Err(format!(
            "{id} matches {} incidents; give more of it",
            hits.len()
        )),
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

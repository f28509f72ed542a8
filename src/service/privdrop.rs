//! Dropping root after the capture handles are open: switch to an unprivileged user and group
//! and give up every capability, so that a parser bug reachable from the wire cannot act as root.
//! `nix` and `caps` provide the safe system-call wrappers.

use caps::CapSet;
use nix::unistd::{Gid, Uid, User};

/// What happened.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Now running as this uid/gid with no capabilities.
    Dropped { uid: u32, gid: u32 },
    /// Not root to begin with: nothing to drop (systemd already runs us as the service user).
    NotRoot,
}

/// Hands `paths` (files and directories the process opened or will create files in as root:
/// the EVE file, the state directory) to `user` before the switch, so that reopening the EVE file
/// after logrotate and writing incident files still work afterwards. Paths that do not exist are
/// skipped; nothing happens when not root.
pub fn hand_over(user: &str, paths: &[&std::path::Path]) -> Result<(), String> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let u = User::from_name(user)
        .map_err(|e| format!("cannot look up user {user}: {e}"))?
        .ok_or_else(|| format!("user {user} does not exist"))?;
    for p in paths.iter().filter(|p| p.exists()) {
        std::os::unix::fs::chown(p, Some(u.uid.as_raw()), Some(u.gid.as_raw()))
            .map_err(|e| format!("cannot hand {} to {user}: {e}", p.display()))?;
    }
    Ok(())
}

/// Switches to `user` (and its primary group) and clears all capability sets, including the
/// bounding and ambient sets, so that nothing can be regained by exec. Fails without changing
/// anything when the user does not exist.
pub fn drop_to(user: &str) -> Result<Outcome, String> {
    if !Uid::effective().is_root() {
        return Ok(Outcome::NotRoot);
    }
    let u = User::from_name(user)
        .map_err(|e| format!("cannot look up user {user}: {e}"))?
        .ok_or_else(|| format!("user {user} does not exist"))?;
    // The bounding set can only be cleared while we still have CAP_SETPCAP.
    caps::clear(None, CapSet::Bounding).map_err(|e| format!("cannot clear bounding set: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("cannot clear ambient set: {e}"))?;
    nix::unistd::setgroups(&[u.gid]).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setgid(u.gid).map_err(|e| format!("setgid({}): {e}", u.gid))?;
    nix::unistd::setuid(u.uid).map_err(|e| format!("setuid({}): {e}", u.uid))?;
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::clear(None, set).map_err(|e| format!("cannot clear {set:?}: {e}"))?;
    }
    // Verify: a switch that silently failed must not go unnoticed.
    if Uid::current().is_root() || Uid::effective().is_root() || setuid_back_works() {
        return Err("still able to act as root after dropping privileges".into());
    }
    Ok(Outcome::Dropped {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    })
}

fn setuid_back_works() -> bool {
    nix::unistd::setuid(Uid::from_raw(0)).is_ok()
}

/// Refuses to go on as root unless `allow_root` (a deliberate configuration choice).
pub fn check_not_root(allow_root: bool) -> Result<(), String> {
    if Uid::effective().is_root() && !allow_root {
        return Err(
            "refusing to run as root: set [service] user to drop privileges after opening the \
             capture, or allow_root = true"
                .into(),
        );
    }
    Ok(())
}

/// The primary group of the current process (for reports).
pub fn current() -> (u32, u32) {
    (Uid::current().as_raw(), Gid::current().as_raw())
}

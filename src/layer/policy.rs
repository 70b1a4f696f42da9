//! Metadata policies shared by every way a layer is made (a directory, a
//! spec, a normalized foreign layer): keep the owners and modes the input
//! has, or write strata's defaults.
//!
//! Invariants: the defaults depend on nothing of the host (root owners,
//! modes from the executable bit only), so a layer built with them is the
//! same on every machine; `Keep` is the explicit opt-in to host metadata.

/// Ownership policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// Keep uid, gid, uname and gname as the input has them.
    Keep,
    /// uid/gid 0, empty names (what `strata layer DIR` writes).
    Root,
}

/// Permission policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modes {
    /// Keep `mode & 0o7777`.
    Keep,
    /// What `strata layer DIR` writes: 0755 if any executable bit, else 0644;
    /// dirs 0755; symlinks 0777 (setuid/setgid/sticky dropped).
    Default,
}

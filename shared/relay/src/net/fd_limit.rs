//! The open-file limit (`RLIMIT_NOFILE`): every connection is a file descriptor, and a
//! service's default soft limit (often 1,024) is far below `max_connections`. At start the
//! relay raises its soft limit to the hard limit, then caps connections at what the limit
//! allows, keeping some descriptors for itself (database, logs, directory connections).

/// Descriptors kept for the relay itself, not for client connections: the database and its
/// journal, log files, listening sockets, the runtime's own, LDAP connections.
pub const RESERVED: u64 = 128;

/// The soft limit before and after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// Soft limit found at start (`None`: unlimited).
    pub before: Option<u64>,
    /// Soft limit in force now (`None`: unlimited).
    pub now: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. When the hard limit is unlimited the
/// soft limit is left as it is (some systems refuse an unlimited soft limit).
#[cfg(unix)]
pub fn raise() -> std::io::Result<Raised> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let old = getrlimit(Resource::Nofile);
    let Some(hard) = old.maximum else {
        return Ok(Raised {
            before: old.current,
            now: old.current,
        });
    };
    if old.current.is_some_and(|soft| soft >= hard) {
        return Ok(Raised {
            before: old.current,
            now: old.current,
        });
    }
    let new = rustix::process::Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    setrlimit(Resource::Nofile, new)?;
    Ok(Raised {
        before: old.current,
        now: getrlimit(Resource::Nofile).current,
    })
}

/// Elsewhere there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise() -> std::io::Result<Raised> {
    Ok(Raised {
        before: None,
        now: None,
    })
}

/// The soft limit in force (`None`: unlimited).
#[cfg(unix)]
pub fn current() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Elsewhere there is no such limit.
#[cfg(not(unix))]
pub fn current() -> Option<u64> {
    None
}

/// The connection cap the descriptor limit allows: `configured`, or less when `limit` (the
/// soft limit in force; `None`: unlimited) minus [`RESERVED`] is smaller. Never below 1.
pub fn connection_cap(configured: usize, limit: Option<u64>) -> usize {
    match limit {
        None => configured,
        Some(limit) => {
            let allowed = usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
            configured.min(allowed).max(1)
        }
    }
}

/// A limit as the log shows it.
pub fn describe(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_string(), |l| l.to_string())
}

/// At start: raises the limit, then lowers `max_connections` to what it allows, with a
/// warning when it does. Returns the soft limit in force (`None`: unlimited).
pub fn fit(max_connections: &mut usize) -> Option<u64> {
    let limit = match raise() {
        Ok(r) => {
            if r.now != r.before {
                tracing::info!(
                    before = %describe(r.before),
                    now = %describe(r.now),
                    "raised the open-file limit"
                );
            }
            r.now
        }
        Err(e) => {
            let now = current();
            tracing::warn!(error = %e, limit = %describe(now), "cannot raise the open-file limit");
            now
        }
    };
    let cap = connection_cap(*max_connections, limit);
    if cap < *max_connections {
        tracing::warn!(
            configured = *max_connections,
            effective = cap,
            open_file_limit = %describe(limit),
            reserved = RESERVED,
            "max_connections lowered to what the open-file limit allows; raise the hard limit (LimitNOFILE= in a systemd unit) to allow more"
        );
        *max_connections = cap;
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_leaves_room_for_the_relay_itself() {
        assert_eq!(connection_cap(10_000, None), 10_000);
        assert_eq!(connection_cap(10_000, Some(1_048_576)), 10_000);
        assert_eq!(connection_cap(10_000, Some(1_024)), 1_024 - 128);
        assert_eq!(connection_cap(10_000, Some(20_000)), 10_000);
        assert_eq!(connection_cap(20_000, Some(20_000)), 20_000 - 128);
        assert_eq!(connection_cap(10_000, Some(5)), 1);
    }

    #[cfg(unix)]
    #[test]
    fn raising_reaches_the_hard_limit() {
        let r = raise().unwrap();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(r.now, now.current);
        if now.maximum.is_some() {
            assert_eq!(now.current, now.maximum);
        }
        assert!(r.now >= r.before || r.now.is_none());
    }
}

//! Brute-force counters kept in the database, so that restarting the relay does not reset
//! them. The arithmetic is the core's [`BackoffPolicy`]; this module only names the keys and
//! stores the records.
//!
//! Keys: `join:ip:<addr>`, `join:ip4:<prefix>/24`, `join:ip4:<prefix>/16`,
//! `join:ip6:<prefix>/56`, `join:ip6:<prefix>/48` (see [`prefix_key`]), `join:global`, `login:ip:<addr>`, `login:user:<name>` (failures
//! for an account from addresses it has not logged in from), `login:user:<name>:ip:<addr>`
//! (failures for an account from one address it has logged in from), `login:global` (failed
//! logins over the whole relay, from addresses new to the account). IPv6 addresses count
//! per /64, see [`address_key`]. The same table holds the certificate quotas of
//! [`crate::accounts::issued`] (`login:issued:<name>`).
//!
//! Splitting the account's counter by known address is what keeps an attacker's flood from
//! locking the real operator out: the flood fills the attacker's address counter and the
//! account's unknown-address counter, while the operator, at an address the account has
//! logged in from before, is judged by a counter of their own.

use crate::store::db::{Database, DbError};
use rusqlite::{params, OptionalExtension};
use sightline_core::join_gate::{prefix_key, Level};
use sightline_core::limiter::{address_key, BackoffPolicy, FailureRecord, Lockout};
use std::net::IpAddr;

/// One counter to consult: its key in the store and the policy that applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Store key.
    pub key: String,
    /// Backoff rule.
    pub policy: BackoffPolicy,
    /// Hard lock on top of the backoff, if any.
    pub lockout: Option<Lockout>,
}

impl Limit {
    /// Failed session codes from the prefix of `ip` at `level`.
    pub fn join_prefix(ip: IpAddr, level: Level, policy: BackoffPolicy) -> Self {
        Self {
            key: format!("join:{}", prefix_key(ip, level)),
            policy,
            lockout: None,
        }
    }

    /// Failed session codes over the whole relay.
    pub fn join_global(policy: BackoffPolicy) -> Self {
        Self {
            key: "join:global".into(),
            policy,
            lockout: None,
        }
    }

    /// Failed logins from one source address.
    pub fn login_address(ip: IpAddr, policy: BackoffPolicy, lockout: Option<Lockout>) -> Self {
        Self {
            key: format!("login:{}", address_key(ip)),
            policy,
            lockout,
        }
    }

    /// Failed logins over the whole relay.
    pub fn login_global(policy: BackoffPolicy) -> Self {
        Self {
            key: "login:global".into(),
            policy,
            lockout: None,
        }
    }

    /// Failed logins for one account name (letter case ignored, like account lookups) from
    /// addresses it has not logged in from.
    pub fn login_account(name: &str, policy: BackoffPolicy, lockout: Option<Lockout>) -> Self {
        Self {
            key: format!("login:user:{}", name.to_lowercase()),
            policy,
            lockout,
        }
    }

    /// Failed logins for one account from one address it has logged in from before.
    pub fn login_account_from(
        name: &str,
        ip: IpAddr,
        policy: BackoffPolicy,
        lockout: Option<Lockout>,
    ) -> Self {
        Self {
            key: format!("login:user:{}:{}", name.to_lowercase(), address_key(ip)),
            policy,
            lockout,
        }
    }
}

/// The stored record of `key`.
pub fn load(db: &Database, key: &str) -> Result<Option<FailureRecord>, DbError> {
    let row = db
        .conn()
        .query_row(
            "SELECT failures, last_failure FROM failures WHERE key = ?1",
            [key],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?;
    Ok(row.map(|(failures, last)| FailureRecord {
        // A damaged count errs on the side of blocking.
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        last_failure: u64::try_from(last).unwrap_or(0),
    }))
}

/// Seconds to wait before another attempt is allowed under all of `limits`, or `None`.
pub fn retry_after(db: &Database, limits: &[Limit], now: u64) -> Result<Option<u64>, DbError> {
    let mut wait = None;
    for limit in limits {
        let rec = load(db, &limit.key)?;
        let locked = limit
            .lockout
            .and_then(|l| l.remaining(&limit.policy, rec.as_ref(), now));
        for w in [limit.policy.retry_after(rec.as_ref(), now), locked]
            .into_iter()
            .flatten()
        {
            wait = Some(wait.map_or(w, |cur: u64| cur.max(w)));
        }
    }
    Ok(wait)
}

/// Records one failure under each of `limits`, durably and all or nothing.
pub fn record_failure(db: &mut Database, limits: &[Limit], now: u64) -> Result<(), DbError> {
    let tx = db.conn_mut().transaction()?;
    for limit in limits {
        let rec = tx
            .query_row(
                "SELECT failures, last_failure FROM failures WHERE key = ?1",
                [&limit.key],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .map(|(f, l)| FailureRecord {
                failures: u32::try_from(f).unwrap_or(u32::MAX),
                last_failure: u64::try_from(l).unwrap_or(0),
            });
        let next = limit.policy.record_failure(rec.as_ref(), now);
        tx.execute(
            "INSERT INTO failures (key, failures, last_failure) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,
                                            last_failure = excluded.last_failure",
            params![
                limit.key,
                i64::from(next.failures),
                i64::try_from(next.last_failure).unwrap_or(i64::MAX)
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Forgets the record of `key` (after a successful login to that account).
pub fn forget(db: &Database, key: &str) -> Result<(), DbError> {
    db.conn()
        .execute("DELETE FROM failures WHERE key = ?1", [key])?;
    Ok(())
}

/// Deletes records with no failure for `quiet_secs` (every policy has forgotten them).
/// Returns how many were deleted.
pub fn prune(db: &Database, now: u64, quiet_secs: u64) -> Result<usize, DbError> {
    let cutoff = i64::try_from(now.saturating_sub(quiet_secs)).unwrap_or(i64::MAX);
    Ok(db
        .conn()
        .execute("DELETE FROM failures WHERE last_failure < ?1", [cutoff])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FREE: BackoffPolicy = BackoffPolicy {
        free_failures: 2,
        base_delay_secs: 60,
        max_delay_secs: 600,
        forget_after_secs: 3600,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_are_named_as_documented() {
        assert_eq!(
            Limit::join_prefix(ip("192.0.2.1"), Level::Address, TWO_FREE).key,
            "join:ip:192.0.2.1"
        );
        assert_eq!(
            Limit::join_prefix(ip("192.0.2.1"), Level::Network, TWO_FREE).key,
            "join:ip4:192.0.0.0/16"
        );
        assert_eq!(
            Limit::join_prefix(ip("2001:db8:1:2::1"), Level::Site, TWO_FREE).key,
            "join:ip6:2001:db8:1:0::/56"
        );
        assert_eq!(Limit::join_global(TWO_FREE).key, "join:global");
        assert_eq!(
            Limit::login_address(ip("::ffff:192.0.2.1"), TWO_FREE, None).key,
            "login:ip:192.0.2.1"
        );
        assert_eq!(Limit::login_global(TWO_FREE).key, "login:global");
        assert_eq!(
            Limit::login_account("Alice", TWO_FREE, None).key,
            "login:user:alice"
        );
        assert_eq!(
            Limit::login_account_from("Alice", ip("2001:db8::1"), TWO_FREE, None).key,
            "login:user:alice:ip6:2001:db8:0:0::/64"
        );
    }

    #[test]
    fn counters_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let limits = [
            Limit::join_prefix(ip("192.0.2.1"), Level::Address, TWO_FREE),
            Limit::join_global(BackoffPolicy::GLOBAL),
        ];
        let t = 1_700_000_000;
        {
            let mut db = Database::create(&path).unwrap();
            // The core counts the failure that reaches `free_failures` as the first to
            // impose a delay: two failures pass, the third attempt must wait.
            for i in 0..2 {
                assert_eq!(
                    retry_after(&db, &limits, t + i).unwrap(),
                    None,
                    "attempt {i}"
                );
                record_failure(&mut db, &limits, t + i).unwrap();
            }
            assert_eq!(retry_after(&db, &limits, t + 1).unwrap(), Some(60));
        }
        // A new process opening the same file sees the same counters.
        let mut db = Database::open(&path).unwrap();
        assert_eq!(retry_after(&db, &limits, t + 11).unwrap(), Some(50));
        assert_eq!(
            load(&db, "join:ip:192.0.2.1").unwrap().map(|r| r.failures),
            Some(2)
        );
        assert_eq!(
            load(&db, "join:global").unwrap().map(|r| r.failures),
            Some(2)
        );
        // Past the delay the address may try again; a further failure doubles the delay.
        assert_eq!(retry_after(&db, &limits, t + 61).unwrap(), None);
        record_failure(&mut db, &limits, t + 61).unwrap();
        assert_eq!(retry_after(&db, &limits, t + 61).unwrap(), Some(120));
        // Another address is not limited, the global counter is not yet.
        let other = [
            Limit::join_prefix(ip("192.0.2.2"), Level::Address, TWO_FREE),
            limits[1].clone(),
        ];
        assert_eq!(retry_after(&db, &other, t + 61).unwrap(), None);
    }

    #[test]
    fn lockout_outlasts_the_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        let lock = Lockout {
            after_failures: 3,
            duration_secs: 500,
        };
        let l = [Limit::login_account("alice", TWO_FREE, Some(lock))];
        for t in [0, 100, 300] {
            record_failure(&mut db, &l, t).unwrap();
        }
        // The backoff alone would allow a try at 360; the lock holds until 800.
        assert_eq!(retry_after(&db, &l, 400).unwrap(), Some(400));
        assert_eq!(retry_after(&db, &l, 800).unwrap(), None);
    }

    #[test]
    fn forget_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        let a = [Limit::login_account("alice", TWO_FREE, None)];
        let b = [Limit::login_account("bob", TWO_FREE, None)];
        record_failure(&mut db, &a, 100).unwrap();
        record_failure(&mut db, &b, 5000).unwrap();
        forget(&db, &a[0].key).unwrap();
        assert_eq!(load(&db, &a[0].key).unwrap(), None);
        record_failure(&mut db, &a, 100).unwrap();
        assert_eq!(prune(&db, 5000, 3600).unwrap(), 1);
        assert_eq!(load(&db, &a[0].key).unwrap(), None);
        assert!(load(&db, &b[0].key).unwrap().is_some());
    }
}

//! How many certificates each account was issued recently, so that the issuing key signs at
//! most [`Quota::per_window`] certificates per account per window: every successful login
//! costs one RSA signature (not constant-time, RUSTSEC-2023-0071), and the person who knows a
//! password must not be able to turn it into unbounded signing work.
//!
//! Records live in the brute-force table under `login:issued:<canonical name>` (uses in the
//! `failures` column, the window's start in `last_failure`), so they survive restarts and are
//! pruned with the rest ([`crate::config::Config::longest_forget_secs`] covers the window).

use crate::accounts::account_name::AccountName;
use crate::store::db::{Database, DbError};
use crate::store::failures;
use rusqlite::params;
use sightline_core::quota::{Quota, QuotaRecord};

/// The store key of `name`'s certificate quota.
pub fn key(name: &AccountName) -> String {
    format!("login:issued:{name}")
}

fn load(db: &Database, key: &str) -> Result<Option<QuotaRecord>, DbError> {
    Ok(failures::load(db, key)?.map(|r| QuotaRecord {
        used: r.failures,
        window_start: r.last_failure,
    }))
}

/// Seconds until `name` may be issued another certificate, or `None` if it may now.
pub fn retry_after(
    db: &Database,
    name: &AccountName,
    quota: Quota,
    now: u64,
) -> Result<Option<u64>, DbError> {
    Ok(quota.retry_after(load(db, &key(name))?.as_ref(), now))
}

/// Counts one certificate for `name` if the quota allows it; otherwise leaves the record and
/// returns the seconds to wait. Call under the database lock, so that two logins racing for
/// the last certificate of a window cannot both have it.
pub fn take(
    db: &Database,
    name: &AccountName,
    quota: Quota,
    now: u64,
) -> Result<Option<u64>, DbError> {
    let key = key(name);
    let rec = load(db, &key)?;
    if let Some(wait) = quota.retry_after(rec.as_ref(), now) {
        return Ok(Some(wait));
    }
    let next = quota.record_use(rec.as_ref(), now);
    db.conn().execute(
        "INSERT INTO failures (key, failures, last_failure) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,
                                        last_failure = excluded.last_failure",
        params![
            key,
            i64::from(next.used),
            i64::try_from(next.window_start).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_kept_in_the_database_per_canonical_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let quota = Quota {
            per_window: 2,
            window_secs: 60,
        };
        let alice = AccountName::parse("Alice ").unwrap();
        let t = 1_700_000_000;
        {
            let db = Database::create(&path).unwrap();
            assert_eq!(take(&db, &alice, quota, t).unwrap(), None);
            assert_eq!(take(&db, &alice, quota, t + 1).unwrap(), None);
            assert_eq!(take(&db, &alice, quota, t + 2).unwrap(), Some(58));
        }
        let db = Database::open(&path).unwrap();
        let again = AccountName::parse("ALICE").unwrap();
        assert_eq!(key(&again), "login:issued:alice");
        assert_eq!(retry_after(&db, &again, quota, t + 10).unwrap(), Some(50));
        let bob = AccountName::parse("bob").unwrap();
        assert_eq!(retry_after(&db, &bob, quota, t + 10).unwrap(), None);
        assert_eq!(take(&db, &again, quota, t + 60).unwrap(), None);
    }
}

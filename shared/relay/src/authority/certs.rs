//! The certificates the relay has issued, and their revocation: every operator certificate is
//! recorded before it is handed out; revoking one (by serial, or all of an account's when it
//! is disabled or removed) marks it and raises the revocation sequence, in one transaction.
//!
//! The sequence orders revocation lists: a list made after a revocation has a higher one.
//! `relay serve` reads it every second to notice revocations made by `relay user` or
//! `relay cert` in another process ([`crate::authority::revocation`]).

use crate::store::db::{Database, DbError};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use sightline_core::identity::Fingerprint;
use sightline_core::revocation::Revoked;

/// A revoked certificate stays on revocation lists this long after its end, so that a kiosk
/// whose clock runs late still refuses it.
pub const LIST_GRACE_SECS: u64 = 86_400;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A certificate about to be handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued<'a> {
    /// Serial (below 2^63).
    pub serial: u64,
    /// Account name.
    pub account: &'a str,
    /// Fingerprint of the issuing key that signs it.
    pub issuer: Fingerprint,
    /// Fingerprint of the operator's key.
    pub key: Fingerprint,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
}

/// Records a certificate before it is signed and handed out.
pub fn record(db: &Database, c: &Issued<'_>) -> Result<(), DbError> {
    db.conn().execute(
        "INSERT INTO certificates (serial, account, issuer, key, not_before, not_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            to_i64(c.serial),
            c.account,
            c.issuer.to_string(),
            c.key.to_string(),
            to_i64(c.not_before),
            to_i64(c.not_after)
        ],
    )?;
    Ok(())
}

/// A recorded certificate, as `relay cert list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Serial.
    pub serial: u64,
    /// Account name.
    pub account: String,
    /// Issuing key fingerprint.
    pub issuer: String,
    /// Operator key fingerprint.
    pub key: String,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
    /// Why, if it was.
    pub reason: Option<String>,
}

impl Record {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            serial: to_u64(row.get("serial")?),
            account: row.get("account")?,
            issuer: row.get("issuer")?,
            key: row.get("key")?,
            not_before: to_u64(row.get("not_before")?),
            not_after: to_u64(row.get("not_after")?),
            revoked_at: row.get::<_, Option<i64>>("revoked_at")?.map(to_u64),
            reason: row.get("reason")?,
        })
    }
}

/// Certificates of `account` (all accounts: `None`), newest first; only those still valid at
/// `now` unless `all`.
pub fn list(
    db: &Database,
    account: Option<&str>,
    all: bool,
    now: u64,
) -> Result<Vec<Record>, DbError> {
    let mut stmt = db.conn().prepare(
        "SELECT * FROM certificates
         WHERE (?1 IS NULL OR account = ?1) AND (?2 OR not_after > ?3)
         ORDER BY not_before DESC, serial",
    )?;
    let rows = stmt
        .query_map(params![account, all, to_i64(now)], Record::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// What revoking one serial did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now; the certificate's account.
    Revoked {
        /// Account the certificate was issued to.
        account: String,
    },
    /// It was already revoked.
    AlreadyRevoked,
    /// No certificate with that serial was ever issued here.
    Unknown,
}

fn bump(tx: &rusqlite::Transaction<'_>) -> Result<(), DbError> {
    tx.execute(
        "UPDATE revocation_state SET sequence = sequence + 1 WHERE id = 1",
        [],
    )?;
    Ok(())
}

/// Revokes the certificate with `serial` at `now`.
pub fn revoke_serial(
    db: &mut Database,
    serial: u64,
    now: u64,
    reason: &str,
) -> Result<Revocation, DbError> {
    let tx = db.conn_mut().transaction()?;
    let found: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT account, revoked_at FROM certificates WHERE serial = ?1",
            [to_i64(serial)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let outcome = match found {
        None => Revocation::Unknown,
        Some((_, Some(_))) => Revocation::AlreadyRevoked,
        Some((account, None)) => {
            tx.execute(
                "UPDATE certificates SET revoked_at = ?1, reason = ?2 WHERE serial = ?3",
                params![to_i64(now), reason, to_i64(serial)],
            )?;
            bump(&tx)?;
            Revocation::Revoked { account }
        }
    };
    tx.commit()?;
    Ok(outcome)
}

/// Revokes every certificate of `account` still valid at `now`; returns their serials.
pub fn revoke_account(
    db: &mut Database,
    account: &str,
    now: u64,
    reason: &str,
) -> Result<Vec<u64>, DbError> {
    let tx = db.conn_mut().transaction()?;
    let serials = {
        let mut stmt = tx.prepare(
            "SELECT serial FROM certificates
             WHERE account = ?1 AND revoked_at IS NULL AND not_after > ?2",
        )?;
        let rows = stmt
            .query_map(params![account, to_i64(now)], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows
    };
    if !serials.is_empty() {
        tx.execute(
            "UPDATE certificates SET revoked_at = ?1, reason = ?2
             WHERE account = ?3 AND revoked_at IS NULL AND not_after > ?4",
            params![to_i64(now), reason, account, to_i64(now)],
        )?;
        bump(&tx)?;
    }
    tx.commit()?;
    Ok(serials.into_iter().map(to_u64).collect())
}

/// The revocation sequence: raised by every revocation.
pub fn sequence(db: &Database) -> Result<u64, DbError> {
    let seq: i64 = db.conn().query_row(
        "SELECT sequence FROM revocation_state WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    Ok(to_u64(seq))
}

/// Revoked certificates that have not ended more than [`LIST_GRACE_SECS`] before `now`: what a
/// revocation list names.
pub fn revoked(db: &Database, now: u64) -> Result<Vec<Revoked>, DbError> {
    let mut stmt = db.conn().prepare(
        "SELECT serial, not_after FROM certificates
         WHERE revoked_at IS NOT NULL AND not_after > ?1
         ORDER BY serial",
    )?;
    let rows = stmt
        .query_map([to_i64(now.saturating_sub(LIST_GRACE_SECS))], |r| {
            Ok(Revoked {
                serial: to_u64(r.get(0)?),
                not_after: to_u64(r.get(1)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Whether the certificate with `serial` is revoked (unknown serials are not).
pub fn is_revoked(db: &Database, serial: u64) -> Result<bool, DbError> {
    let revoked: Option<Option<i64>> = db
        .conn()
        .query_row(
            "SELECT revoked_at FROM certificates WHERE serial = ?1",
            [to_i64(serial)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(matches!(revoked, Some(Some(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(serial: u64, account: &str, not_after: u64) -> Issued<'_> {
        Issued {
            serial,
            account,
            issuer: Fingerprint([1; 32]),
            key: Fingerprint([2; 32]),
            not_before: 100,
            not_after,
        }
    }

    #[test]
    fn revoking_by_serial_and_by_account_raises_the_sequence_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        record(&db, &issued(1, "alice", 1000)).unwrap();
        record(&db, &issued(2, "alice", 2000)).unwrap();
        record(&db, &issued(3, "Alice", 150)).unwrap();
        record(&db, &issued(4, "bob", 2000)).unwrap();
        record(&db, &issued(u64::MAX >> 1, "bob", 2000)).unwrap();
        assert_eq!(sequence(&db).unwrap(), 0);
        assert_eq!(list(&db, Some("ALICE"), false, 200).unwrap().len(), 2);
        assert_eq!(list(&db, None, true, 200).unwrap().len(), 5);

        assert_eq!(
            revoke_serial(&mut db, 4, 300, "test").unwrap(),
            Revocation::Revoked {
                account: "bob".into()
            }
        );
        assert_eq!(sequence(&db).unwrap(), 1);
        assert_eq!(
            revoke_serial(&mut db, 4, 301, "test").unwrap(),
            Revocation::AlreadyRevoked
        );
        assert_eq!(
            revoke_serial(&mut db, 99, 301, "test").unwrap(),
            Revocation::Unknown
        );
        assert_eq!(sequence(&db).unwrap(), 1, "nothing revoked, nothing raised");
        assert!(is_revoked(&db, 4).unwrap() && !is_revoked(&db, 1).unwrap());

        // The account's unexpired certificates, whatever the spelling; the expired one stays.
        let mut got = revoke_account(&mut db, "ALICE", 200, "user.disable").unwrap();
        got.sort();
        assert_eq!(got, vec![1, 2]);
        assert_eq!(sequence(&db).unwrap(), 2);
        assert!(revoke_account(&mut db, "alice", 201, "again")
            .unwrap()
            .is_empty());
        assert_eq!(sequence(&db).unwrap(), 2);

        let listed: Vec<u64> = revoked(&db, 500)
            .unwrap()
            .iter()
            .map(|r| r.serial)
            .collect();
        assert_eq!(listed, vec![1, 2, 4]);
        // Long after their end they leave the list.
        assert!(revoked(&db, 2000 + LIST_GRACE_SECS).unwrap().is_empty());
        let r = &list(&db, Some("bob"), true, 0).unwrap();
        assert!(r
            .iter()
            .any(|c| c.serial == u64::MAX >> 1 && c.revoked_at.is_none()));
    }
}

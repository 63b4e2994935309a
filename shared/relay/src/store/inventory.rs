//! `relay data inventory`: every kind of personal data and metadata the relay stores, where
//! (file and table), which fields, why, how long (the retention setting in force), and how
//! many rows there are now (for recordings also their bytes and the oldest). One list,
//! [`KINDS`], covers every table of the schema and every file of the data directory; a test
//! compares it with the database's own table list, so a table added without an entry here
//! fails.

use crate::store::db::{Database, DbError};
use crate::store::paths::{self, DataDir};
use crate::store::retention::Retention;
use serde::Serialize;

/// How long a kind is kept.
#[derive(Debug, Clone, Copy)]
enum Kept {
    /// Under a retention setting: its key, its value, and what the days count from.
    Setting(&'static str, fn(&Retention) -> u64, &'static str),
    /// Not under a setting: why and until when.
    Fixed(&'static str),
}

/// One kind of stored data.
#[derive(Debug, Clone, Copy)]
struct Kind {
    what: &'static str,
    file: &'static str,
    table: Option<&'static str>,
    fields: &'static str,
    why: &'static str,
    kept: Kept,
}

const DB: &str = paths::DATABASE_FILE;

/// Every table and file, in the order printed.
const KINDS: &[Kind] = &[
    Kind {
        what: "operator accounts",
        file: DB,
        table: Some("users"),
        fields: "name, display_name, organisation, password_hash (argon2id), role, permissions, \
                 disabled, source (local, ldap or oidc), session_limit_secs, totp_secret, \
                 totp_last_step, created_at, updated_at, oidc_provider, oidc_issuer and \
                 oidc_subject (who the account is at its OpenID Connect provider)",
        why: "log operators in (password and TOTP, or the identity provider's user) and put \
              their name and organisation on their certificates",
        kept: Kept::Fixed(
            "until `relay user remove`; removing an account also removes its password \
             history, recovery codes and known addresses",
        ),
    },
    Kind {
        what: "previous password hashes",
        file: DB,
        table: Some("password_history"),
        fields: "user_id, hash (argon2id), created_at",
        why: "refuse a new password that is one of the account's last ones",
        kept: Kept::Fixed("the newest 24 per account, until the account is removed"),
    },
    Kind {
        what: "recovery codes",
        file: DB,
        table: Some("recovery_codes"),
        fields: "user_id, hash, used_at",
        why: "log in once without the authenticator app",
        kept: Kept::Fixed("until `relay user reset-2fa` replaces them or the account is removed"),
    },
    Kind {
        what: "addresses an account logged in from",
        file: DB,
        table: Some("known_sources"),
        fields: "user_id, source (IPv4 address or IPv6 /64), last_login",
        why: "judge failed logins from an address the operator uses by a counter of their own, \
              so an attacker's flood cannot lock the operator out",
        kept: Kept::Setting(
            "retention.known_addresses_days",
            |r| r.known_addresses_days,
            "after the last login from the address; or until the account is removed",
        ),
    },
    Kind {
        what: "brute-force counters and certificate quotas",
        file: DB,
        table: Some("failures"),
        fields: "key (names the account and/or address or prefix), failures, last_failure",
        why: "slow down and lock out guessing of passwords and session codes; limit \
              certificates per account",
        kept: Kept::Setting(
            "retention.failures_days",
            |r| r.failures_days,
            "after the last failure, and never before every login limit has forgotten it; \
             a successful login forgets the account's counters",
        ),
    },
    Kind {
        what: "audit log",
        file: DB,
        table: Some("audit"),
        fields: "id, at, actor (source address of a login, or cli/relay), action, subject \
                 (account), detail (for session entries the operator's and agent's \
                 addresses), session, hash",
        why: "accountability: who changed which account, every login and session, provable \
              by the hash chain and signed checkpoints",
        kept: Kept::Setting(
            "retention.audit_days",
            |r| r.audit_days,
            "after the entry was written; pruned up to the newest signed checkpoint older than \
             that, behind a signed prune checkpoint",
        ),
    },
    Kind {
        what: "issued certificates",
        file: DB,
        table: Some("certificates"),
        fields: "serial, account, issuer (fingerprint), key (operator key fingerprint), \
                 not_before, not_after, revoked_at, reason",
        why: "revoke certificates and sign the revocation list; `relay cert list`",
        kept: Kept::Setting(
            "retention.certificates_days",
            |r| r.certificates_days,
            "after the certificate left the revocation list (its end plus one day)",
        ),
    },
    Kind {
        what: "revocation sequence",
        file: DB,
        table: Some("revocation_state"),
        fields: "sequence (a number; no personal data)",
        why: "order revocation lists and notice revocations made by other commands",
        kept: Kept::Fixed("one row, always"),
    },
    Kind {
        what: "relayed sessions",
        file: DB,
        table: Some("sessions"),
        fields: "id, operator, operator_address, agent_address, started_at, ended_at, \
                 end_reason, abnormal, bytes_to_agent, bytes_to_operator, resumed",
        why: "`relay sessions`: which operator served whom from where, how long, how it ended",
        kept: Kept::Setting(
            "retention.sessions_days",
            |r| r.sessions_days,
            "after the session ended; running sessions are kept",
        ),
    },
    Kind {
        what: "session recordings (index)",
        file: DB,
        table: Some("recordings"),
        fields: "session, operator, created_at, bytes, segments, complete, completed_at, sha256, \
                 last_activity",
        why: "find a session's recording for the auditors (`relay recordings`); prove what was \
              stored (the audit log holds each segment's SHA-256)",
        kept: Kept::Setting(
            "retention.recordings_days",
            |r| r.recordings_days,
            "after the recording was completed (or, unfinished, last uploaded to), with its file",
        ),
    },
    Kind {
        what: "session recordings (ciphertext)",
        file: paths::RECORDINGS_DIR,
        table: None,
        fields: "one file per session, <session id>.age: the screen (and, if the policy says so, \
                 the operator's input) encrypted by the viewer with age to the policy's \
                 recording recipients; the relay cannot read it",
        why: "the help desk's record of what its operators did, for its auditors",
        kept: Kept::Setting(
            "retention.recordings_days",
            |r| r.recordings_days,
            "after the recording was completed (or, unfinished, last uploaded to)",
        ),
    },
    Kind {
        what: "root CA private key",
        file: paths::CA_KEY_FILE,
        table: None,
        fields: "RSA-4096 private key (PKCS#8 PEM, mode 0600)",
        why: "certify issuing keys; clients pin its fingerprint",
        kept: Kept::Fixed("until deleted by hand (absent when the root key is offline)"),
    },
    Kind {
        what: "issuing private key",
        file: paths::ISSUER_KEY_FILE,
        table: None,
        fields: "RSA private key (PKCS#8 PEM, mode 0600)",
        why: "sign operator certificates, channel credentials and revocation lists",
        kept: Kept::Fixed("until `relay ca rotate` replaces it"),
    },
    Kind {
        what: "issuing key's certificate",
        file: paths::ISSUER_CERT_FILE,
        table: None,
        fields: "the issuing public key certified by the root key, with the root public key",
        why: "prove the issuing key to clients",
        kept: Kept::Fixed("until `relay ca rotate` replaces it"),
    },
    Kind {
        what: "next issuing key",
        file: paths::NEXT_ISSUER_KEY_FILE,
        table: None,
        fields: "RSA private key waiting for its certificate (PKCS#8 PEM, mode 0600)",
        why: "rotation with an offline root key (`relay ca request`)",
        kept: Kept::Fixed("until installed by `relay ca install`"),
    },
    Kind {
        what: "audit signing key",
        file: paths::AUDIT_KEY_FILE,
        table: None,
        fields: "Ed25519 private key (PKCS#8 PEM, mode 0600)",
        why: "sign audit checkpoints and prune checkpoints",
        kept: Kept::Fixed("until deleted by hand"),
    },
    Kind {
        what: "configuration",
        file: paths::CONFIG_FILE,
        table: None,
        fields: "listening addresses, limits, LDAP settings (no password: the LDAP service \
                 password is read from the file it names)",
        why: "how the relay runs",
        kept: Kept::Fixed("written by the administrator"),
    },
    Kind {
        what: "policy",
        file: "policy.toml",
        table: None,
        fields: "permissions, session length, password and two-factor rules, recording, \
                 retention",
        why: "what the help desk allows, and these retention settings",
        kept: Kept::Fixed("written by the administrator"),
    },
];

/// One kind, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What it is.
    pub what: String,
    /// The file in the data directory.
    pub file: String,
    /// The table in the database, for database records.
    pub table: Option<String>,
    /// The fields stored.
    pub fields: String,
    /// Why the relay keeps it.
    pub purpose: String,
    /// How long, with the setting in force.
    pub kept: String,
    /// The retention setting that governs it, if one does.
    pub setting: Option<String>,
    /// Its value in days (0: forever).
    pub days: Option<u64>,
    /// Rows now (tables), files (the recordings directory), or whether the file exists
    /// (files: 1 or 0).
    pub count: u64,
    /// Bytes stored, for recordings.
    pub bytes: Option<u64>,
    /// When the oldest was started, Unix seconds, for recordings.
    pub oldest: Option<u64>,
}

/// Files in `dir` and their bytes (none when it does not exist).
fn dir_totals(dir: &std::path::Path) -> Result<(u64, u64), DbError> {
    let io = |source| DbError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io(e)),
    };
    let (mut files, mut bytes) = (0u64, 0u64);
    for entry in entries {
        let meta = entry.and_then(|e| e.metadata()).map_err(io)?;
        if meta.is_file() {
            files += 1;
            bytes = bytes.saturating_add(meta.len());
        }
    }
    Ok((files, bytes))
}

fn kept(k: Kept, r: &Retention) -> (String, Option<String>, Option<u64>) {
    match k {
        Kept::Fixed(text) => (text.to_string(), None, None),
        Kept::Setting(key, value, from) => {
            let days = value(r);
            let text = if days == 0 {
                format!("forever ({key} = 0)")
            } else {
                format!("{days} days {from} ({key})")
            };
            (text, Some(key.to_string()), Some(days))
        }
    }
}

/// The inventory of `data` under the retention settings `r`, with the counts in `db`.
pub fn inventory(data: &DataDir, db: &Database, r: &Retention) -> Result<Vec<Item>, DbError> {
    let mut items = Vec::with_capacity(KINDS.len());
    for k in KINDS {
        let (count, bytes, oldest) = match (k.table, k.file) {
            (Some("recordings"), _) => {
                let (n, bytes, oldest) = crate::store::recordings::totals(db)?;
                (n, Some(bytes), oldest)
            }
            // Table names come from the constant list above, never from input.
            (Some(table), _) => {
                let n: i64 = db.conn().query_row(
                    &format!("SELECT count(*) FROM \"{table}\""),
                    [],
                    |row| row.get(0),
                )?;
                (u64::try_from(n).unwrap_or(0), None, None)
            }
            (None, paths::RECORDINGS_DIR) => {
                let (files, bytes) = dir_totals(&data.recordings())?;
                (files, Some(bytes), None)
            }
            (None, file) => (u64::from(data.root().join(file).exists()), None, None),
        };
        let (kept, setting, days) = kept(k.kept, r);
        items.push(Item {
            what: k.what.into(),
            file: k.file.into(),
            table: k.table.map(Into::into),
            fields: k.fields.into(),
            purpose: k.why.into(),
            kept,
            setting,
            days,
            count,
            bytes,
            oldest,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_table_has_an_entry_and_counts_rows() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let db = Database::create(&data.database()).unwrap();
        crate::store::audit::record(&db, 1, "cli", "user.add", Some("a"), None).unwrap();
        let items = inventory(&data, &db, &Retention::default()).unwrap();
        let mut tables: Vec<String> = db
            .conn()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        tables.sort();
        let mut listed: Vec<String> = items.iter().filter_map(|i| i.table.clone()).collect();
        listed.sort();
        assert_eq!(listed, tables);
        let audit = items.iter().find(|i| i.table.as_deref() == Some("audit"));
        assert_eq!(audit.map(|a| (a.count, a.days)), Some((1, Some(365))));
        let rec = items
            .iter()
            .find(|i| i.table.as_deref() == Some("recordings"));
        assert_eq!(
            rec.map(|r| (r.count, r.bytes, r.oldest, r.days)),
            Some((0, Some(0), None, Some(90)))
        );
        let files = items.iter().find(|i| i.file == paths::RECORDINGS_DIR);
        assert_eq!(files.map(|f| (f.count, f.bytes)), Some((0, Some(0))));
        let forever = Retention {
            audit_days: 0,
            ..Retention::default()
        };
        let items = inventory(&data, &db, &forever).unwrap();
        assert!(items.iter().any(|i| i.kept.starts_with("forever")));
    }
}

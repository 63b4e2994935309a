//! The relay's SQLite database: created with owner-only permissions, refused when its
//! permissions are loose, and migrated forward by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema up one version inside a transaction; later
//! issues append entries, never edit old ones.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors opening or using the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No database exists yet.
    #[error("no relay database at {0}; run `relay init` first")]
    Missing(PathBuf),
    /// The file could not be created or inspected.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may access the file.
    #[error("{path}: permissions {mode:o} are too open; the database must be readable by its owner only (chmod 600)")]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not a usable SQLite database.
    #[error("{path}: cannot open the database: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's explanation.
        source: rusqlite::Error,
    },
    /// A newer relay created the schema.
    #[error("the database has schema version {found}, this relay understands up to {supported}; upgrade the relay")]
    NewerSchema {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The audit log's newest entry has no valid hash, so nothing can be chained after it.
    #[error("the audit log's entry #{0} has no valid chain hash; nothing more is logged until it is repaired (run `relay audit verify`)")]
    AuditChain(i64),
    /// A query failed.
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Schema steps; step `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1: accounts and brute-force counters.
    "CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        display_name  TEXT,
        organisation  TEXT,
        password_hash TEXT    NOT NULL,
        role          TEXT    NOT NULL DEFAULT 'operator',
        permissions   INTEGER NOT NULL DEFAULT 3,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE failures (
        key          TEXT    PRIMARY KEY,
        failures     INTEGER NOT NULL,
        last_failure INTEGER NOT NULL
    );",
    // Version 2: roles, per-operator limits, two-factor login, password history, sources an
    // account has logged in from, and the audit log. `permissions` becomes a mask that narrows
    // the policy (existing values keep their meaning: view and control).
    "ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE users ADD COLUMN session_limit_secs INTEGER;
    ALTER TABLE users ADD COLUMN totp_secret BLOB;
    ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
    ALTER TABLE users ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE password_history (
        id         INTEGER PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        hash       TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX password_history_user ON password_history(user_id, id);
    CREATE TABLE recovery_codes (
        id      INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        hash    TEXT    NOT NULL,
        used_at INTEGER
    );
    CREATE INDEX recovery_codes_user ON recovery_codes(user_id);
    CREATE TABLE known_sources (
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        source     TEXT    NOT NULL,
        last_login INTEGER NOT NULL,
        PRIMARY KEY (user_id, source)
    );
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        actor   TEXT    NOT NULL,
        action  TEXT    NOT NULL,
        subject TEXT,
        detail  TEXT
    );",
    // Version 3: every certificate the relay issues (so that it can be revoked), and the
    // revocation sequence, raised with every revocation (revocation lists are ordered by it).
    // Serials are below 2^63 so they fit SQLite's integers.
    "CREATE TABLE certificates (
        serial     INTEGER PRIMARY KEY,
        account    TEXT    NOT NULL COLLATE NOCASE,
        issuer     TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        not_before INTEGER NOT NULL,
        not_after  INTEGER NOT NULL,
        revoked_at INTEGER,
        reason     TEXT
    );
    CREATE INDEX certificates_account ON certificates(account, not_after);
    CREATE INDEX certificates_revoked ON certificates(revoked_at, not_after);
    CREATE TABLE revocation_state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        sequence INTEGER NOT NULL
    );
    INSERT INTO revocation_state (id, sequence) VALUES (1, 0);",
    // Version 4: the audit log becomes a hash chain (entries already there are linked by
    // `audit::chain::link_existing` in the same transaction) and names the session an entry
    // concerns; the index finds the last checkpoint.
    "ALTER TABLE audit ADD COLUMN session TEXT;
    ALTER TABLE audit ADD COLUMN hash TEXT;
    CREATE INDEX audit_action ON audit(action, id);",
    // Version 5: the record of relayed sessions (`crate::store::sessions`): opened when paired,
    // completed when ended; one left open by a relay that died is ended at the next start.
    "CREATE TABLE sessions (
        id                TEXT    PRIMARY KEY,
        operator          TEXT    NOT NULL,
        operator_address  TEXT    NOT NULL,
        agent_address     TEXT    NOT NULL,
        agent_key         TEXT,
        started_at        INTEGER NOT NULL,
        ended_at          INTEGER,
        end_reason        TEXT,
        abnormal          INTEGER NOT NULL DEFAULT 0,
        bytes_to_agent    INTEGER NOT NULL DEFAULT 0,
        bytes_to_operator INTEGER NOT NULL DEFAULT 0,
        resumed           INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_open ON sessions(ended_at);",
    // Version 6: session recordings (`crate::store::recordings`): one row per recording file,
    // `bytes` the part covered by `recording.chunk` audit entries (`segments` of them), and
    // each account's own recording mode (NULL: the policy's; it can only be stricter).
    "ALTER TABLE users ADD COLUMN recording TEXT;
    CREATE TABLE recordings (
        session       TEXT    PRIMARY KEY,
        operator      TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        bytes         INTEGER NOT NULL DEFAULT 0,
        segments      INTEGER NOT NULL DEFAULT 0,
        complete      INTEGER NOT NULL DEFAULT 0,
        completed_at  INTEGER,
        sha256        TEXT,
        last_activity INTEGER NOT NULL
    );
    CREATE INDEX recordings_age ON recordings(last_activity);",
    // Version 7: accounts that sign in with an OpenID Connect provider (`source` 'oidc', no
    // password): the `[[oidc]]` table's name, and the issuer and subject of the user there,
    // recorded at the first sign-in (NULL before). Existing accounts keep NULL: no provider.
    "ALTER TABLE users ADD COLUMN oidc_provider TEXT;
    ALTER TABLE users ADD COLUMN oidc_issuer TEXT;
    ALTER TABLE users ADD COLUMN oidc_subject TEXT;",
];

/// The schema version whose migration links the audit entries already written.
const AUDIT_CHAIN_VERSION: i64 = 4;

/// Newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open, migrated database.
#[derive(Debug)]
pub struct Database {
    conn: Connection,
    checkpointer: Option<crate::store::audit::Checkpointer>,
    path: PathBuf,
}

impl Database {
    /// Opens the database at `path`, creating it (mode 0600) if it does not exist.
    pub fn create(path: &Path) -> Result<Self, DbError> {
        if !path.exists() {
            create_private_file(path)?;
        }
        Self::open(path)
    }

    /// Opens an existing database and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DbError::Missing(path.to_path_buf()))
            }
            Err(source) => {
                return Err(DbError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(DbError::LoosePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let open_err = |source| DbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // FULL: a recorded failure survives a power cut. secure_delete: a removed account's
        // password hash and TOTP secret do not linger in free pages. foreign_keys: removing an
        // account removes its history, recovery codes and known sources.
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
        )
        .map_err(open_err)?;
        let mut db = Self {
            conn,
            checkpointer: None,
            path: path.to_path_buf(),
        };
        db.migrate().map_err(|e| match e {
            DbError::Sql(source) => open_err(source),
            other => other,
        })?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(DbError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (version, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(found).unwrap_or(0))
        {
            let tx = self.conn.transaction()?;
            tx.execute_batch(step)?;
            if version as i64 + 1 == AUDIT_CHAIN_VERSION {
                crate::store::audit::chain::link_existing(&tx)?;
            }
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The connection, for the store modules.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, for transactions.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// From now on, audit entries written through this handle are followed by a checkpoint
    /// signed with `c.key` every `c.every` entries (the running relay).
    pub fn sign_audit_checkpoints(&mut self, c: crate::store::audit::Checkpointer) {
        self.checkpointer = Some(c);
    }

    /// The checkpoint signer, if [`Database::sign_audit_checkpoints`] set one.
    pub fn audit_checkpointer(&self) -> Option<&crate::store::audit::Checkpointer> {
        self.checkpointer.as_ref()
    }

    /// The data directory the database file lies in, where the files it indexes live
    /// (recordings).
    pub fn data_dir(&self) -> crate::store::paths::DataDir {
        let parent = self.path.parent().unwrap_or_else(|| Path::new("."));
        crate::store::paths::DataDir::new(parent)
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

fn create_private_file(path: &Path) -> Result<(), DbError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    // SQLite gives its journal files the mode of the database file, so they stay private too.
    opts.open(path).map(drop).map_err(|source| DbError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_file_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        assert!(matches!(Database::open(&path), Err(DbError::Missing(_))));
        let db = Database::create(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        drop(db);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Reopening an up-to-date database changes nothing.
        let db = Database::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_database_keeps_its_accounts_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        create_private_file(&path).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO users (name, password_hash, role, permissions, disabled, created_at)
                 VALUES ('alice', '$argon2id$x', 'operator', 3, 0, 1700000000)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO failures (key, failures, last_failure) VALUES ('login:ip:192.0.2.1', 4, 5)",
                [],
            )
            .unwrap();
        }
        let db = Database::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        let alice = crate::accounts::users::find(&db, "alice").unwrap().unwrap();
        assert_eq!(alice.password_hash, "$argon2id$x");
        assert_eq!(alice.role, crate::accounts::auth::Role::Operator);
        assert_eq!(alice.source, crate::accounts::users::Source::Local);
        assert_eq!(
            alice.permissions,
            sightline_core::cert::Permissions::VIEW
                .union(sightline_core::cert::Permissions::CONTROL)
        );
        assert!(!alice.two_factor && !alice.disabled);
        assert_eq!(alice.created_at, 1_700_000_000);
        let rec = crate::store::failures::load(&db, "login:ip:192.0.2.1")
            .unwrap()
            .unwrap();
        assert_eq!(rec.failures, 4);
    }

    #[test]
    fn a_version_2_database_keeps_its_accounts_and_audit_and_starts_with_no_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        create_private_file(&path).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute(
                "INSERT INTO users (name, password_hash, role, permissions, disabled, created_at)
                 VALUES ('bob', '$argon2id$y', 'admin', 1, 1, 1700000001)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO audit (at, actor, action, subject) VALUES (5, 'cli', 'user.add', 'bob')",
                [],
            )
            .unwrap();
        }
        let db = Database::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        let bob = crate::accounts::users::find(&db, "bob").unwrap().unwrap();
        assert_eq!(bob.password_hash, "$argon2id$y");
        assert!(bob.disabled);
        let audit = crate::store::audit::recent(&db, 10).unwrap();
        assert_eq!(audit.len(), 1);
        // Linked once by the migration, from the genesis hash.
        assert!(crate::store::audit::verify::verify_db(&db, None, None)
            .unwrap()
            .is_ok());
        assert_eq!(audit[0].hash.as_deref().map(str::len), Some(64));
        assert_eq!(crate::authority::certs::sequence(&db).unwrap(), 0);
        assert!(crate::authority::certs::list(&db, None, true, 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_version_6_database_keeps_its_accounts_which_sign_in_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        create_private_file(&path).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..6] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            conn.execute(
                "INSERT INTO users (name, password_hash, role, permissions, disabled, created_at,
                                    source, recording)
                 VALUES ('carol', '$argon2id$z', 'admin', 1, 0, 1700000002, 'ldap', 'required')",
                [],
            )
            .unwrap();
        }
        let db = Database::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        let carol = crate::accounts::users::find(&db, "carol").unwrap().unwrap();
        assert_eq!(carol.password_hash, "$argon2id$z");
        assert_eq!(carol.source, crate::accounts::users::Source::Ldap);
        assert_eq!(
            carol.oidc, None,
            "no account signs in with a provider until linked"
        );
        assert_eq!(
            carol.recording,
            Some(sightline_core::cert::RecordingMode::Required)
        );
    }

    #[test]
    fn refuses_newer_schema_loose_permissions_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let db = Database::create(&path).unwrap();
        db.conn()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(db);
        assert!(matches!(
            Database::open(&path),
            Err(DbError::NewerSchema { .. })
        ));

        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x55u8; 4096]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                Database::open(&junk),
                Err(DbError::LoosePermissions { .. })
            ));
            std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let e = Database::open(&junk).unwrap_err();
        assert!(matches!(e, DbError::Open { .. }), "{e}");
    }
}

//! Operator accounts in the database: name rules, adding (with the password policy and an
//! argon2id hash), listing, looking up and removing.

use crate::db::{Database, DbError};
use crate::password::{self, HashError, PasswordPolicy, PolicyError};
use rusqlite::{params, OptionalExtension, Row};
use sightline_core::cert::Permissions;
use std::fmt;

/// Longest user name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 64;
/// Longest display name or organisation, in characters.
pub const MAX_LABEL_CHARS: usize = 128;
/// Role of new accounts.
pub const DEFAULT_ROLE: &str = "operator";
/// Permissions of new accounts.
pub const DEFAULT_PERMISSIONS: Permissions =
    Permissions(Permissions::VIEW.0 | Permissions::CONTROL.0);

/// Errors managing accounts.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user name breaks the naming rule.
    #[error("invalid user name {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidName(String),
    /// A display name or organisation cannot be shown safely.
    #[error("invalid {field}: {reason}")]
    InvalidLabel {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// An account with this name (in any letter case) exists.
    #[error("user {0:?} already exists")]
    Duplicate(String),
    /// No account has this name.
    #[error("no user named {0:?}")]
    Unknown(String),
    /// The password breaks the policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The password could not be hashed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for UserError {
    fn from(e: rusqlite::Error) -> Self {
        UserError::Db(DbError::Sql(e))
    }
}

/// Checks the user-name rule: 1 to 64 characters from `[A-Za-z0-9._@-]`.
pub fn validate_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidName(name.to_string()))
    }
}

/// Checks a label shown to customers (display name, organisation): no control or
/// direction-override characters that could disguise it, no surrounding spaces, bounded.
pub fn validate_label(field: &'static str, text: &str) -> Result<(), UserError> {
    let bad = |reason| Err(UserError::InvalidLabel { field, reason });
    if text.trim().is_empty() {
        return bad("must not be empty");
    }
    if text.trim() != text {
        return bad("must not start or end with spaces");
    }
    if text.chars().count() > MAX_LABEL_CHARS {
        return bad("use at most 128 characters");
    }
    // Control characters, and the bidirectional overrides and isolates that can make one name
    // look like another.
    let sneaky = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if text.chars().any(sneaky) {
        return bad("must not contain control or text-direction characters");
    }
    Ok(())
}

/// An account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Account name as created (lookups ignore letter case).
    pub name: String,
    /// Name shown to customers, if set.
    pub display_name: Option<String>,
    /// Organisation shown to customers, if set.
    pub organisation: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role (`operator` for now; `admin` later).
    pub role: String,
    /// What the operator may do on a customer's machine.
    pub permissions: Permissions,
    /// A disabled account cannot log in.
    pub disabled: bool,
    /// Creation time, Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("display_name", &self.display_name)
            .field("organisation", &self.organisation)
            .field("role", &self.role)
            .field("permissions", &self.permissions)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl User {
    /// The name shown to customers: the display name, else the account name.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// The organisation shown to customers ("" when unset).
    pub fn shown_organisation(&self) -> &str {
        self.organisation.as_deref().unwrap_or("")
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let permissions: i64 = row.get("permissions")?;
        let created_at: i64 = row.get("created_at")?;
        Ok(Self {
            name: row.get("name")?,
            display_name: row.get("display_name")?,
            organisation: row.get("organisation")?,
            password_hash: row.get("password_hash")?,
            role: row.get("role")?,
            // Deny by default: a value that does not fit grants nothing.
            permissions: Permissions(u32::try_from(permissions).unwrap_or(0)),
            disabled: row.get::<_, i64>("disabled")? != 0,
            created_at: u64::try_from(created_at).unwrap_or(0),
        })
    }
}

/// What an administrator gives to create an account.
#[derive(Clone, Copy)]
pub struct NewUser<'a> {
    /// Account name.
    pub name: &'a str,
    /// Password in clear (hashed here, never stored).
    pub password: &'a str,
    /// Optional display name.
    pub display_name: Option<&'a str>,
    /// Optional organisation.
    pub organisation: Option<&'a str>,
    /// Creation time, Unix seconds.
    pub now: u64,
}

impl fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Creates an account after checking the name, labels and password policy.
pub fn add(db: &Database, new: NewUser<'_>, policy: &PasswordPolicy) -> Result<(), UserError> {
    validate_name(new.name)?;
    if let Some(d) = new.display_name {
        validate_label("display name", d)?;
    }
    if let Some(o) = new.organisation {
        validate_label("organisation", o)?;
    }
    policy.check(new.name, new.password)?;
    if find(db, new.name)?.is_some() {
        return Err(UserError::Duplicate(new.name.to_string()));
    }
    let hash = password::hash_password(new.password)?;
    let inserted = db.conn().execute(
        "INSERT INTO users (name, display_name, organisation, password_hash, role, permissions,
                            disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
        params![
            new.name,
            new.display_name,
            new.organisation,
            hash,
            DEFAULT_ROLE,
            i64::from(DEFAULT_PERMISSIONS.0),
            i64::try_from(new.now).unwrap_or(i64::MAX),
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        // Someone added the same name between the check and the insert.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(UserError::Duplicate(new.name.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Looks up an account by name, ignoring letter case.
pub fn find(db: &Database, name: &str) -> Result<Option<User>, DbError> {
    Ok(db
        .conn()
        .query_row(
            "SELECT * FROM users WHERE name = ?1",
            [name],
            User::from_row,
        )
        .optional()?)
}

/// All accounts, by name.
pub fn list(db: &Database) -> Result<Vec<User>, DbError> {
    let mut stmt = db.conn().prepare("SELECT * FROM users ORDER BY name")?;
    let users = stmt
        .query_map([], User::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(users)
}

/// Removes an account.
pub fn remove(db: &Database, name: &str) -> Result<(), UserError> {
    match db
        .conn()
        .execute("DELETE FROM users WHERE name = ?1", [name])?
    {
        0 => Err(UserError::Unknown(name.to_string())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(&dir.path().join("relay.db")).unwrap();
        (dir, db)
    }

    fn new<'a>(name: &'a str, password: &'a str) -> NewUser<'a> {
        NewUser {
            name,
            password,
            display_name: None,
            organisation: None,
            now: 1_700_000_000,
        }
    }

    #[test]
    fn names_follow_the_rule() {
        for ok in [
            "a",
            "alice",
            "Alice.Smith",
            "a_b-c@example.org",
            &"x".repeat(64),
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " alice",
            "alice bob",
            "al/ice",
            "ålice",
            "a\n",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(validate_name(bad), Err(UserError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn labels_refuse_disguises() {
        assert!(validate_label("display name", "Alice Smith (Help Desk)").is_ok());
        assert!(validate_label("display name", "Zoë Ångström").is_ok());
        for bad in [
            "",
            "  ",
            " Alice",
            "Alice\nAdmin",
            "Ali\u{202e}ce",
            &"x".repeat(129),
        ] {
            assert!(validate_label("display name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_list_find_remove() {
        let (_dir, db) = temp_db();
        let policy = PasswordPolicy::DEFAULT;
        add(&db, new("bob", "bob's long password"), &policy).unwrap();
        add(
            &db,
            NewUser {
                display_name: Some("Alice Smith"),
                organisation: Some("Example Help Desk"),
                ..new("alice", "alice's long password")
            },
            &policy,
        )
        .unwrap();

        let all = list(&db).unwrap();
        assert_eq!(
            all.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        let alice = &all[0];
        assert_eq!(alice.shown_name(), "Alice Smith");
        assert_eq!(alice.shown_organisation(), "Example Help Desk");
        assert_eq!(alice.role, "operator");
        assert_eq!(alice.permissions, DEFAULT_PERMISSIONS);
        assert!(!alice.disabled);
        assert_eq!(alice.created_at, 1_700_000_000);
        assert_eq!(
            password::verify_password("alice's long password", &alice.password_hash),
            password::Verification::Match
        );
        assert!(
            !format!("{alice:?}").contains("argon2"),
            "Debug hides the hash"
        );
        assert_eq!(all[1].shown_name(), "bob");
        assert_eq!(all[1].shown_organisation(), "");

        // Lookups and duplicates ignore letter case.
        assert_eq!(
            find(&db, "ALICE").unwrap().map(|u| u.name),
            Some("alice".into())
        );
        assert!(matches!(
            add(&db, new("Alice", "another long password"), &policy),
            Err(UserError::Duplicate(_))
        ));

        remove(&db, "alice").unwrap();
        assert!(find(&db, "alice").unwrap().is_none());
        assert!(matches!(remove(&db, "alice"), Err(UserError::Unknown(_))));
        assert_eq!(list(&db).unwrap().len(), 1);
    }

    #[test]
    fn add_enforces_name_and_password_rules_before_storing() {
        let (_dir, db) = temp_db();
        let policy = PasswordPolicy::DEFAULT;
        assert!(matches!(
            add(&db, new("bad name", "long enough password"), &policy),
            Err(UserError::InvalidName(_))
        ));
        assert!(matches!(
            add(&db, new("carol", "short"), &policy),
            Err(UserError::Policy(PolicyError::TooShort { .. }))
        ));
        assert!(matches!(
            add(&db, new("carol.example", "Carol.Example"), &policy),
            Err(UserError::Policy(PolicyError::SameAsUserName))
        ));
        assert!(matches!(
            add(
                &db,
                NewUser {
                    display_name: Some("Carol\u{7}"),
                    ..new("carol", "long enough password")
                },
                &policy
            ),
            Err(UserError::InvalidLabel { .. })
        ));
        assert!(list(&db).unwrap().is_empty());
    }
}

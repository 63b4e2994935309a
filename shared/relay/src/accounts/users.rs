//! Operator accounts in the database: name rules; adding (password policy, argon2id hash,
//! TOTP enrolment and recovery codes; or no password at all for an account that signs in with
//! an OpenID Connect provider); listing, showing, changing, disabling and removing; and the
//! per-login state (TOTP steps used, recovery codes left, addresses an account has logged in
//! from).
//!
//! Every change that touches more than one row runs in one transaction, so a failure leaves
//! the account as it was.

use crate::accounts::auth::Role;
use crate::accounts::labels::{self, Label, LabelError};
use crate::accounts::password::{self, HashError, PasswordPolicy, PolicyError};
use crate::accounts::recovery;
use crate::accounts::totp::TotpSecret;
use crate::store::db::{Database, DbError};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use sightline_core::cert::{Permissions, RecordingMode};
use std::fmt;
use zeroize::Zeroizing;

/// Longest user name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 64;
/// Permission mask of new accounts: no narrowing, the policy decides.
pub const DEFAULT_PERMISSIONS: Permissions = Permissions(u32::MAX);
/// Stored in place of a password hash for accounts whose password the directory checks; it is
/// not a PHC string, so it can never verify.
pub const DIRECTORY_PASSWORD: &str = "!directory";
/// Stored in place of a password hash for accounts that sign in with an OpenID Connect
/// provider; like [`DIRECTORY_PASSWORD`], it can never verify.
pub const OIDC_PASSWORD: &str = "!oidc";
/// Previous password hashes kept per account (the policy's `history` may not exceed it).
pub const KEPT_HISTORY: usize = 24;

/// Errors managing accounts.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user name breaks the naming rule.
    #[error("invalid user name {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidName(String),
    /// A display name or organisation would not be shown to customers exactly as given.
    #[error(transparent)]
    InvalidLabel(#[from] LabelError),
    /// A new role name is not known.
    #[error("unknown role {0:?}: use admin or operator")]
    InvalidRole(String),
    /// The account's password is checked by the directory, not the relay.
    #[error("user {0:?} logs in with the directory's password; change it there")]
    DirectoryAccount(String),
    /// The account signs in with an identity provider: it has no password or authenticator
    /// at the relay.
    #[error("user {name:?} signs in with the identity provider {provider:?} (OpenID Connect): it has no password or authenticator at the relay")]
    OidcAccount {
        /// The account.
        name: String,
        /// The `[[oidc]]` table it is linked to.
        provider: String,
    },
    /// An account to be linked to an identity provider was given a password or TOTP, or no
    /// provider; or a provider name that cannot be an `[[oidc]]` table's.
    #[error("{0}")]
    OidcLink(String),
    /// The policy requires two-factor login.
    #[error(
        "the policy requires two-factor login for every account (two_factor.mode = \"required\")"
    )]
    TwoFactorRequired,
    /// The TOTP secret could not be made.
    #[error("two-factor enrolment failed: {0}")]
    Enrolment(String),
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

/// Where an account's password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// By the relay (argon2id hash in this database).
    Local,
    /// By the LDAP directory configured in `relay.toml`.
    Ldap,
    /// None: the account signs in with an OpenID Connect provider ([`User::oidc`]).
    Oidc,
}

impl Source {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Ldap => "ldap",
            Source::Oidc => "oidc",
        }
    }
}

/// Who an account is at its OpenID Connect provider: the token's `iss` and `sub`, recorded at
/// the account's first sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSubject {
    /// The provider's issuer (`iss`).
    pub issuer: String,
    /// The user's subject there (`sub`).
    pub subject: String,
}

/// The identity provider an account signs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLink {
    /// The `[[oidc]]` table's `name` in `relay.toml`.
    pub provider: String,
    /// The user at the provider, once the account has signed in (`None` before: the first
    /// sign-in records it, and later ones must be the same user).
    pub subject: Option<OidcSubject>,
}

/// An account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Account name as created (lookups ignore letter case).
    pub name: String,
    /// Name shown to customers, if set.
    pub display_name: Option<String>,
    /// Organisation shown to customers, if set.
    pub organisation: Option<String>,
    /// argon2id PHC string ([`DIRECTORY_PASSWORD`] for directory accounts).
    pub password_hash: String,
    /// Role on the relay. An unreadable stored role reads as `operator`, the lesser one.
    pub role: Role,
    /// Where the password is checked.
    pub source: Source,
    /// The identity provider of an account that signs in with OpenID Connect
    /// ([`Source::Oidc`]); `None` for every other account.
    pub oidc: Option<OidcLink>,
    /// Mask over the policy's permissions: the operator gets what both allow.
    pub permissions: Permissions,
    /// Own session limit, seconds; `None` follows the policy (the shorter one applies).
    pub session_limit_secs: Option<u64>,
    /// Own recording mode; `None` follows the policy (the stricter one applies).
    pub recording: Option<RecordingMode>,
    /// A disabled account cannot log in or start sessions.
    pub disabled: bool,
    /// Whether TOTP is enrolled.
    pub two_factor: bool,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Last change, Unix seconds (0: never changed).
    pub updated_at: u64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("display_name", &self.display_name)
            .field("organisation", &self.organisation)
            .field("role", &self.role)
            .field("source", &self.source)
            .field("oidc", &self.oidc)
            .field("permissions", &self.permissions)
            .field("session_limit_secs", &self.session_limit_secs)
            .field("recording", &self.recording)
            .field("disabled", &self.disabled)
            .field("two_factor", &self.two_factor)
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

    /// What this operator may do under a help desk that allows `allowed`.
    pub fn effective_permissions(&self, allowed: Permissions) -> Permissions {
        Permissions(self.permissions.0 & allowed.0)
    }

    /// This operator's session limit under a policy limit of `policy_secs`.
    pub fn effective_session_limit(&self, policy_secs: u64) -> u64 {
        match self.session_limit_secs {
            Some(own) => own.min(policy_secs),
            None => policy_secs,
        }
    }

    /// This operator's recording mode under a policy mode of `policy`.
    pub fn effective_recording(&self, policy: RecordingMode) -> RecordingMode {
        crate::policy::recording::effective_mode(policy, self.recording)
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let permissions: i64 = row.get("permissions")?;
        let created_at: i64 = row.get("created_at")?;
        let updated_at: i64 = row.get("updated_at")?;
        let role: String = row.get("role")?;
        let source: String = row.get("source")?;
        let limit: Option<i64> = row.get("session_limit_secs")?;
        let secret: Option<Vec<u8>> = row.get("totp_secret")?;
        let recording: Option<String> = row.get("recording")?;
        let provider: Option<String> = row.get("oidc_provider")?;
        let issuer: Option<String> = row.get("oidc_issuer")?;
        let sub: Option<String> = row.get("oidc_subject")?;
        let source = match source.as_str() {
            "ldap" => Source::Ldap,
            "oidc" => Source::Oidc,
            // A source this build does not know checks no password: the local hash decides,
            // and a directory account's placeholder never verifies.
            _ => Source::Local,
        };
        // Only an OpenID Connect account has a provider. A half-recorded subject (one of the
        // two missing) is a user nobody can be: every sign-in is refused until the
        // administrator links the account again.
        let oidc = provider
            .filter(|_| source == Source::Oidc)
            .map(|provider| OidcLink {
                provider,
                subject: match (issuer, sub) {
                    (None, None) => None,
                    (issuer, subject) => Some(OidcSubject {
                        issuer: issuer.unwrap_or_default(),
                        subject: subject.unwrap_or_default(),
                    }),
                },
            });
        Ok(Self {
            id: row.get("id")?,
            name: row.get("name")?,
            display_name: row.get("display_name")?,
            organisation: row.get("organisation")?,
            password_hash: row.get("password_hash")?,
            role: Role::parse(&role).unwrap_or(Role::Operator),
            source,
            oidc,
            // Deny by default: a value that does not fit grants nothing.
            permissions: Permissions(u32::try_from(permissions).unwrap_or(0)),
            // A damaged limit errs on the side of the shortest session.
            session_limit_secs: limit.map(|l| u64::try_from(l).unwrap_or(60)),
            // A damaged mode errs on the side of recording.
            recording: recording.map(|r| {
                crate::policy::recording::parse_mode(&r).unwrap_or(RecordingMode::Required)
            }),
            disabled: row.get::<_, i64>("disabled")? != 0,
            two_factor: secret.is_some(),
            created_at: u64::try_from(created_at).unwrap_or(0),
            updated_at: u64::try_from(updated_at).unwrap_or(0),
        })
    }
}

/// What an administrator gives to create an account.
#[derive(Clone, Copy)]
pub struct NewUser<'a> {
    /// Account name.
    pub name: &'a str,
    /// Password in clear (hashed here, never stored); `None` for directory accounts.
    pub password: Option<&'a str>,
    /// Optional display name.
    pub display_name: Option<&'a str>,
    /// Optional organisation.
    pub organisation: Option<&'a str>,
    /// Role.
    pub role: Role,
    /// Where the password is checked.
    pub source: Source,
    /// The `[[oidc]]` table an account of [`Source::Oidc`] signs in with (then without
    /// `password` and `two_factor`); `None` for every other source.
    pub oidc: Option<&'a str>,
    /// Narrowing of the policy's permissions; `None`: none.
    pub permissions: Option<Permissions>,
    /// Own session limit, seconds.
    pub session_limit_secs: Option<u64>,
    /// Enrol TOTP.
    pub two_factor: bool,
    /// Creation time, Unix seconds.
    pub now: u64,
}

impl<'a> NewUser<'a> {
    /// A local operator with a password, two-factor login and the policy's permissions.
    pub fn operator(name: &'a str, password: &'a str, now: u64) -> Self {
        Self {
            name,
            password: Some(password),
            display_name: None,
            organisation: None,
            role: Role::Operator,
            source: Source::Local,
            oidc: None,
            permissions: None,
            session_limit_secs: None,
            two_factor: true,
            now,
        }
    }

    /// An operator who signs in with the identity provider `provider` (an `[[oidc]]` table's
    /// name): no password, no TOTP (the provider's second factor counts), the policy's
    /// permissions.
    pub fn oidc(name: &'a str, provider: &'a str, now: u64) -> Self {
        Self {
            password: None,
            source: Source::Oidc,
            oidc: Some(provider),
            two_factor: false,
            ..Self::operator(name, "", now)
        }
    }
}

impl fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("source", &self.source)
            .field("oidc", &self.oidc)
            .finish_non_exhaustive()
    }
}

/// A fresh TOTP secret and recovery codes, to show the administrator once.
pub struct Enrolment {
    /// The TOTP secret (for the `otpauth://` URI and QR code).
    pub secret: TotpSecret,
    /// One-time recovery codes in clear; only their hashes are stored.
    pub recovery_codes: Vec<Zeroizing<String>>,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("recovery_codes", &self.recovery_codes.len())
            .finish_non_exhaustive()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Checks a display name and organisation about to be stored ([`labels::validate`]).
pub fn check_labels(
    display_name: Option<&str>,
    organisation: Option<&str>,
) -> Result<(), UserError> {
    if let Some(d) = display_name {
        labels::validate(Label::DisplayName, d)?;
    }
    if let Some(o) = organisation {
        labels::validate(Label::Organisation, o)?;
    }
    Ok(())
}

/// Stores a new TOTP secret and recovery codes for `user_id`, replacing any old ones.
fn enrol(tx: &Transaction<'_>, user_id: i64) -> Result<Enrolment, UserError> {
    let secret = TotpSecret::generate();
    let codes = recovery::generate(recovery::COUNT);
    tx.execute(
        "UPDATE users SET totp_secret = ?1, totp_last_step = NULL WHERE id = ?2",
        params![secret.as_bytes(), user_id],
    )?;
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    for code in &codes {
        let hash = recovery::hash(code)
            .ok_or_else(|| UserError::Enrolment("a generated recovery code is malformed".into()))?;
        tx.execute(
            "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
            params![user_id, hash],
        )?;
    }
    Ok(Enrolment {
        secret,
        recovery_codes: codes,
    })
}

/// Creates an account after checking the name, labels and password policy; returns the TOTP
/// enrolment when `new.two_factor`. An account of [`Source::Oidc`] names its provider and has
/// neither password nor TOTP ([`NewUser::oidc`]).
pub fn add(
    db: &mut Database,
    new: NewUser<'_>,
    policy: &PasswordPolicy,
) -> Result<Option<Enrolment>, UserError> {
    validate_name(new.name)?;
    check_labels(new.display_name, new.organisation)?;
    check_oidc(&new)?;
    let hash = match (new.source, new.password) {
        (Source::Local, Some(pw)) => {
            policy.check(new.name, pw)?;
            password::hash_password(pw)?
        }
        (Source::Local, None) => {
            return Err(UserError::Policy(PolicyError::TooShort {
                min: policy.min_chars,
            }))
        }
        (Source::Ldap, _) => DIRECTORY_PASSWORD.to_string(),
        (Source::Oidc, _) => OIDC_PASSWORD.to_string(),
    };
    let tx = db.conn_mut().transaction()?;
    let exists: bool = tx
        .query_row(
            "SELECT 1 FROM users WHERE name = ?1",
            [new.name],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if exists {
        return Err(UserError::Duplicate(new.name.to_string()));
    }
    // None: someone added the same name between the check and the insert.
    let id = insert_row(&tx, &new, &hash, None)?
        .ok_or_else(|| UserError::Duplicate(new.name.to_string()))?;
    if new.source == Source::Local {
        tx.execute(
            "INSERT INTO password_history (user_id, hash, created_at) VALUES (?1, ?2, ?3)",
            params![id, hash, to_i64(new.now)],
        )?;
    }
    let enrolment = if new.two_factor {
        Some(enrol(&tx, id)?)
    } else {
        None
    };
    tx.commit()?;
    Ok(enrolment)
}

/// Checks what links a new account to an identity provider: only an account of
/// [`Source::Oidc`] names one, and such an account has a provider and no password or TOTP.
fn check_oidc(new: &NewUser<'_>) -> Result<(), UserError> {
    let bad = |why: &str| Err(UserError::OidcLink(why.to_owned()));
    match (new.source, new.oidc) {
        (Source::Oidc, None) => bad(
            "an account that signs in with an identity provider needs the provider's name \
             (relay user add NAME --oidc PROVIDER)",
        ),
        (Source::Oidc, Some(provider)) if !crate::accounts::oidc::config::valid_name(provider) => {
            Err(UserError::OidcLink(format!(
                "invalid identity provider name {provider:?}: the name of an [[oidc]] table in \
                 relay.toml (1 to 32 characters of a-z, 0-9 and '-')"
            )))
        }
        (Source::Oidc, Some(_)) if new.password.is_some() || new.two_factor => bad(
            "an account that signs in with an identity provider has no password or \
             authenticator at the relay: the provider checks both",
        ),
        (Source::Local | Source::Ldap, Some(_)) => {
            bad("only an account that signs in with an identity provider names one")
        }
        _ => Ok(()),
    }
}

/// Inserts the account row (in the caller's transaction); `None` when the name is taken.
fn insert_row(
    conn: &Connection,
    new: &NewUser<'_>,
    hash: &str,
    subject: Option<&OidcSubject>,
) -> Result<Option<i64>, DbError> {
    let inserted = conn.execute(
        "INSERT INTO users (name, display_name, organisation, password_hash, role, permissions,
                            disabled, created_at, source, session_limit_secs, updated_at,
                            oidc_provider, oidc_issuer, oidc_subject)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?7, ?10, ?11, ?12)",
        params![
            new.name,
            new.display_name,
            new.organisation,
            hash,
            new.role.as_str(),
            i64::from(new.permissions.unwrap_or(DEFAULT_PERMISSIONS).0),
            to_i64(new.now),
            new.source.as_str(),
            new.session_limit_secs.map(to_i64),
            new.oidc,
            subject.map(|s| s.issuer.as_str()),
            subject.map(|s| s.subject.as_str()),
        ],
    );
    match inserted {
        Ok(_) => Ok(Some(conn.last_insert_rowid())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the account of a user who has just signed in with the identity provider
/// `new.oidc` as `subject` (`auto_provision`), in the caller's transaction: no password, no
/// TOTP, the user already recorded. `None` when the name is taken. The caller checked `new`
/// (a canonical account name, a configured provider, no labels).
pub(crate) fn insert_provisioned(
    conn: &Connection,
    new: &NewUser<'_>,
    subject: &OidcSubject,
) -> Result<Option<i64>, DbError> {
    let new = NewUser {
        source: Source::Oidc,
        password: None,
        two_factor: false,
        ..*new
    };
    insert_row(conn, &new, OIDC_PASSWORD, Some(subject))
}

/// Records `subject` as the user at the provider of the OpenID Connect account `user_id`, if
/// none is recorded yet (its first sign-in); `false` when one already was.
pub(crate) fn bind_oidc_subject(
    conn: &Connection,
    user_id: i64,
    subject: &OidcSubject,
    now: u64,
) -> Result<bool, DbError> {
    let changed = conn.execute(
        "UPDATE users SET oidc_issuer = ?1, oidc_subject = ?2, updated_at = ?3
         WHERE id = ?4 AND source = 'oidc' AND oidc_issuer IS NULL AND oidc_subject IS NULL",
        params![subject.issuer, subject.subject, to_i64(now), user_id],
    )?;
    Ok(changed == 1)
}

/// Makes `name` an account that signs in with the identity provider `provider` (an
/// `[[oidc]]` table's name) and forgets the user recorded there, so that the next sign-in
/// records it anew: a password or directory account loses its password, password history,
/// TOTP secret and recovery codes. Returns the account as it was.
pub fn link_oidc(
    db: &mut Database,
    name: &str,
    provider: &str,
    now: u64,
) -> Result<User, UserError> {
    check_oidc(&NewUser::oidc(name, provider, now))?;
    let tx = db.conn_mut().transaction()?;
    let before = tx
        .query_row(
            "SELECT * FROM users WHERE name = ?1",
            [name],
            User::from_row,
        )
        .optional()?
        .ok_or_else(|| UserError::Unknown(name.to_string()))?;
    tx.execute(
        "UPDATE users SET source = 'oidc', password_hash = ?1, oidc_provider = ?2,
                          oidc_issuer = NULL, oidc_subject = NULL, totp_secret = NULL,
                          totp_last_step = NULL, updated_at = ?3
         WHERE id = ?4",
        params![OIDC_PASSWORD, provider, to_i64(now), before.id],
    )?;
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [before.id])?;
    tx.execute(
        "DELETE FROM password_history WHERE user_id = ?1",
        [before.id],
    )?;
    tx.commit()?;
    Ok(before)
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

/// Looks up an account that must exist.
pub fn get(db: &Database, name: &str) -> Result<User, UserError> {
    find(db, name)?.ok_or_else(|| UserError::Unknown(name.to_string()))
}

/// All accounts, by name.
pub fn list(db: &Database) -> Result<Vec<User>, DbError> {
    let mut stmt = db.conn().prepare("SELECT * FROM users ORDER BY name")?;
    let users = stmt
        .query_map([], User::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(users)
}

/// Removes an account with its history, recovery codes and known sources.
pub fn remove(db: &Database, name: &str) -> Result<(), UserError> {
    match db
        .conn()
        .execute("DELETE FROM users WHERE name = ?1", [name])?
    {
        0 => Err(UserError::Unknown(name.to_string())),
        _ => Ok(()),
    }
}

/// Disables or enables an account; a disabled account can neither log in nor start sessions.
pub fn set_disabled(db: &Database, name: &str, disabled: bool, now: u64) -> Result<(), UserError> {
    match db.conn().execute(
        "UPDATE users SET disabled = ?1, updated_at = ?2 WHERE name = ?3",
        params![i64::from(disabled), to_i64(now), name],
    )? {
        0 => Err(UserError::Unknown(name.to_string())),
        _ => Ok(()),
    }
}

/// Changes to an account's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New role.
    pub role: Option<Role>,
    /// New display name (`Some(None)` clears it).
    pub display_name: Option<Option<String>>,
    /// New organisation (`Some(None)` clears it).
    pub organisation: Option<Option<String>>,
    /// New permission mask.
    pub permissions: Option<Permissions>,
    /// New own session limit (`Some(None)` follows the policy).
    pub session_limit_secs: Option<Option<u64>>,
    /// New own recording mode (`Some(None)` follows the policy).
    pub recording: Option<Option<RecordingMode>>,
}

/// Applies `changes` to an account in one step.
pub fn update(db: &mut Database, name: &str, changes: &Changes, now: u64) -> Result<(), UserError> {
    check_labels(
        changes.display_name.as_ref().and_then(Option::as_deref),
        changes.organisation.as_ref().and_then(Option::as_deref),
    )?;
    let tx = db.conn_mut().transaction()?;
    let id: i64 = tx
        .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| UserError::Unknown(name.to_string()))?;
    if let Some(role) = changes.role {
        tx.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            params![role.as_str(), id],
        )?;
    }
    if let Some(d) = &changes.display_name {
        tx.execute(
            "UPDATE users SET display_name = ?1 WHERE id = ?2",
            params![d, id],
        )?;
    }
    if let Some(o) = &changes.organisation {
        tx.execute(
            "UPDATE users SET organisation = ?1 WHERE id = ?2",
            params![o, id],
        )?;
    }
    if let Some(p) = changes.permissions {
        tx.execute(
            "UPDATE users SET permissions = ?1 WHERE id = ?2",
            params![i64::from(p.0), id],
        )?;
    }
    if let Some(l) = changes.session_limit_secs {
        tx.execute(
            "UPDATE users SET session_limit_secs = ?1 WHERE id = ?2",
            params![l.map(to_i64), id],
        )?;
    }
    if let Some(r) = changes.recording {
        tx.execute(
            "UPDATE users SET recording = ?1 WHERE id = ?2",
            params![r.map(RecordingMode::name), id],
        )?;
    }
    tx.execute(
        "UPDATE users SET updated_at = ?1 WHERE id = ?2",
        params![to_i64(now), id],
    )?;
    tx.commit()?;
    Ok(())
}

/// Sets a new password after the policy and history checks.
pub fn change_password(
    db: &mut Database,
    name: &str,
    new_password: &str,
    policy: &PasswordPolicy,
    now: u64,
) -> Result<(), UserError> {
    let user = get(db, name)?;
    refuse_oidc(&user)?;
    if user.source != Source::Local {
        return Err(UserError::DirectoryAccount(user.name));
    }
    policy.check(&user.name, new_password)?;
    let previous: Vec<String> = {
        let mut stmt = db.conn().prepare(
            "SELECT hash FROM password_history WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![user.id, to_i64(KEPT_HISTORY as u64)], |r| {
            r.get::<_, String>(0)
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    // The current password always counts as used, whatever the history length.
    let mut check = vec![user.password_hash.clone()];
    check.extend(previous.into_iter().filter(|h| *h != user.password_hash));
    let recent = PasswordPolicy {
        history: policy.history.max(1),
        ..*policy
    };
    recent.check_history(new_password, &check)?;
    let hash = password::hash_password(new_password)?;
    let tx = db.conn_mut().transaction()?;
    tx.execute(
        "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
        params![hash, to_i64(now), user.id],
    )?;
    tx.execute(
        "INSERT INTO password_history (user_id, hash, created_at) VALUES (?1, ?2, ?3)",
        params![user.id, hash, to_i64(now)],
    )?;
    tx.execute(
        "DELETE FROM password_history WHERE user_id = ?1 AND id NOT IN
            (SELECT id FROM password_history WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2)",
        params![user.id, to_i64(KEPT_HISTORY as u64)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Replaces an account's TOTP secret and recovery codes (a lost phone); the old ones stop
/// working at once.
pub fn reset_two_factor(db: &mut Database, name: &str, now: u64) -> Result<Enrolment, UserError> {
    let user = get(db, name)?;
    // The provider's second factor counts for it; a TOTP secret here would never be asked.
    refuse_oidc(&user)?;
    let tx = db.conn_mut().transaction()?;
    let enrolment = enrol(&tx, user.id)?;
    tx.execute(
        "UPDATE users SET updated_at = ?1 WHERE id = ?2",
        params![to_i64(now), user.id],
    )?;
    tx.commit()?;
    Ok(enrolment)
}

/// [`UserError::OidcAccount`] for an account that signs in with an identity provider.
pub fn refuse_oidc(user: &User) -> Result<(), UserError> {
    match (&user.source, &user.oidc) {
        (Source::Oidc, link) => Err(UserError::OidcAccount {
            name: user.name.clone(),
            provider: link
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |l| l.provider.clone()),
        }),
        _ => Ok(()),
    }
}

/// The account's TOTP secret and the last step accepted, if enrolled.
pub fn totp_state(
    db: &Database,
    user_id: i64,
) -> Result<Option<(TotpSecret, Option<u64>)>, DbError> {
    let row = db
        .conn()
        .query_row(
            "SELECT totp_secret, totp_last_step FROM users WHERE id = ?1",
            [user_id],
            |r| Ok((r.get::<_, Option<Vec<u8>>>(0)?, r.get::<_, Option<i64>>(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((Some(bytes), last)) => TotpSecret::from_bytes(bytes)
            .ok()
            // A damaged step counter errs on the side of refusing codes.
            .map(|s| (s, last.map(|l| u64::try_from(l).unwrap_or(u64::MAX)))),
        _ => None,
    })
}

/// Records `step` as used, if it is newer than the last one used; `false` means a concurrent
/// login used it (or a later one) first.
pub fn accept_totp_step(db: &Database, user_id: i64, step: u64) -> Result<bool, DbError> {
    let changed = db.conn().execute(
        "UPDATE users SET totp_last_step = ?1
         WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
        params![to_i64(step), user_id],
    )?;
    Ok(changed == 1)
}

/// Uses up the recovery code `input` if it is one of the account's unused codes.
pub fn use_recovery_code(
    db: &Database,
    user_id: i64,
    input: &str,
    now: u64,
) -> Result<bool, DbError> {
    let stored: Vec<(i64, String)> = {
        let mut stmt = db.conn().prepare(
            "SELECT id, hash FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        )?;
        let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let Some(id) = recovery::find_match(input, &stored) else {
        return Ok(false);
    };
    let changed = db.conn().execute(
        "UPDATE recovery_codes SET used_at = ?1 WHERE id = ?2 AND used_at IS NULL",
        params![to_i64(now), id],
    )?;
    Ok(changed == 1)
}

/// Unused recovery codes of an account.
pub fn recovery_codes_left(db: &Database, user_id: i64) -> Result<usize, DbError> {
    let n: i64 = db.conn().query_row(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Whether the account logged in from `source` (an address key) within `within_secs`.
pub fn is_known_source(
    db: &Database,
    user_id: i64,
    source: &str,
    now: u64,
    within_secs: u64,
) -> Result<bool, DbError> {
    let last: Option<i64> = db
        .conn()
        .query_row(
            "SELECT last_login FROM known_sources WHERE user_id = ?1 AND source = ?2",
            params![user_id, source],
            |r| r.get(0),
        )
        .optional()?;
    Ok(last.is_some_and(|t| now.saturating_sub(u64::try_from(t).unwrap_or(0)) < within_secs))
}

/// Records a successful login of the account from `source`.
pub fn remember_source(db: &Database, user_id: i64, source: &str, now: u64) -> Result<(), DbError> {
    db.conn().execute(
        "INSERT INTO known_sources (user_id, source, last_login) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id, source) DO UPDATE SET last_login = excluded.last_login",
        params![user_id, source, to_i64(now)],
    )?;
    Ok(())
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
        NewUser::operator(name, password, 1_700_000_000)
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
    fn add_list_find_remove() {
        let (_dir, mut db) = temp_db();
        let policy = PasswordPolicy::DEFAULT;
        let bob = add(&mut db, new("bob", "bob's long password"), &policy).unwrap();
        let bob = bob.expect("two-factor is enrolled by default");
        assert_eq!(bob.recovery_codes.len(), recovery::COUNT);
        add(
            &mut db,
            NewUser {
                display_name: Some("Alice Smith"),
                organisation: Some("Example Help Desk"),
                role: Role::Admin,
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
        assert_eq!(alice.role, Role::Admin);
        assert_eq!(alice.source, Source::Local);
        assert_eq!(alice.permissions, DEFAULT_PERMISSIONS);
        assert!(alice.two_factor);
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
            add(&mut db, new("Alice", "another long password"), &policy),
            Err(UserError::Duplicate(_))
        ));

        let id = find(&db, "alice").unwrap().unwrap().id;
        remove(&db, "alice").unwrap();
        assert!(find(&db, "alice").unwrap().is_none());
        assert!(matches!(remove(&db, "alice"), Err(UserError::Unknown(_))));
        assert_eq!(list(&db).unwrap().len(), 1);
        // Its recovery codes and history went with it.
        let left: i64 = db
            .conn()
            .query_row(
                "SELECT (SELECT count(*) FROM recovery_codes WHERE user_id = ?1)
                      + (SELECT count(*) FROM password_history WHERE user_id = ?1)",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn add_enforces_name_and_password_rules_before_storing() {
        let (_dir, mut db) = temp_db();
        let policy = PasswordPolicy::DEFAULT;
        assert!(matches!(
            add(&mut db, new("bad name", "long enough password"), &policy),
            Err(UserError::InvalidName(_))
        ));
        assert!(matches!(
            add(&mut db, new("carol", "short"), &policy),
            Err(UserError::Policy(PolicyError::TooShort { .. }))
        ));
        assert!(matches!(
            add(&mut db, new("carol.example", "Carol.Example"), &policy),
            Err(UserError::Policy(PolicyError::SameAsUserName))
        ));
        assert!(matches!(
            add(&mut db, new("carol", "password1234"), &policy),
            Err(UserError::Policy(PolicyError::Common))
        ));
        assert!(matches!(
            add(
                &mut db,
                NewUser {
                    display_name: Some("Carol\u{7}"),
                    ..new("carol", "long enough password")
                },
                &policy
            ),
            Err(UserError::InvalidLabel(_))
        ));
        assert!(list(&db).unwrap().is_empty());
    }

    #[test]
    fn totp_steps_only_move_forward_and_recovery_codes_work_once() {
        let (_dir, mut db) = temp_db();
        let e = add(
            &mut db,
            new("dave", "dave's long password"),
            &PasswordPolicy::DEFAULT,
        )
        .unwrap()
        .unwrap();
        let id = find(&db, "dave").unwrap().unwrap().id;
        let (secret, last) = totp_state(&db, id).unwrap().unwrap();
        assert_eq!(secret.as_bytes(), e.secret.as_bytes());
        assert_eq!(last, None);
        assert!(accept_totp_step(&db, id, 100).unwrap());
        assert!(!accept_totp_step(&db, id, 100).unwrap(), "same step twice");
        assert!(!accept_totp_step(&db, id, 99).unwrap(), "older step");
        assert!(accept_totp_step(&db, id, 101).unwrap());
        assert_eq!(totp_state(&db, id).unwrap().unwrap().1, Some(101));

        let code = e.recovery_codes[3].to_string();
        assert_eq!(recovery_codes_left(&db, id).unwrap(), recovery::COUNT);
        assert!(!use_recovery_code(&db, id, "0000-0000-0000-0000", 5).unwrap());
        assert!(use_recovery_code(&db, id, &code.to_uppercase(), 5).unwrap());
        assert!(!use_recovery_code(&db, id, &code, 6).unwrap(), "used up");
        assert_eq!(recovery_codes_left(&db, id).unwrap(), recovery::COUNT - 1);

        // A reset makes the old secret and codes worthless.
        let again = reset_two_factor(&mut db, "dave", 7).unwrap();
        let (secret2, last2) = totp_state(&db, id).unwrap().unwrap();
        assert_ne!(secret2.as_bytes(), e.secret.as_bytes());
        assert_eq!(secret2.as_bytes(), again.secret.as_bytes());
        assert_eq!(last2, None);
        assert!(!use_recovery_code(&db, id, &e.recovery_codes[0], 8).unwrap());
        assert!(use_recovery_code(&db, id, &again.recovery_codes[0], 8).unwrap());
    }

    #[test]
    fn password_changes_respect_policy_and_history() {
        let (_dir, mut db) = temp_db();
        let policy = PasswordPolicy {
            history: 2,
            ..PasswordPolicy::DEFAULT
        };
        add(&mut db, new("erin", "first long password"), &policy).unwrap();
        let current = change_password(&mut db, "erin", "first long password", &policy, 1);
        assert!(matches!(
            current,
            Err(UserError::Policy(PolicyError::Reused { .. }))
        ));
        change_password(&mut db, "erin", "second long password", &policy, 2).unwrap();
        change_password(&mut db, "erin", "third long password", &policy, 3).unwrap();
        assert!(matches!(
            change_password(&mut db, "erin", "second long password", &policy, 4),
            Err(UserError::Policy(PolicyError::Reused { .. }))
        ));
        // Two changes later the first one is out of a history of 2.
        change_password(&mut db, "erin", "first long password", &policy, 5).unwrap();
        let erin = get(&db, "erin").unwrap();
        assert_eq!(
            password::verify_password("first long password", &erin.password_hash),
            password::Verification::Match
        );
        assert!(matches!(
            change_password(&mut db, "erin", "short", &policy, 6),
            Err(UserError::Policy(PolicyError::TooShort { .. }))
        ));
        assert!(matches!(
            change_password(&mut db, "nobody", "a long new password", &policy, 6),
            Err(UserError::Unknown(_))
        ));
    }

    #[test]
    fn settings_disable_and_directory_accounts() {
        let (_dir, mut db) = temp_db();
        let policy = PasswordPolicy::DEFAULT;
        add(&mut db, new("frank", "frank's long password"), &policy).unwrap();
        set_disabled(&db, "frank", true, 10).unwrap();
        assert!(get(&db, "frank").unwrap().disabled);
        set_disabled(&db, "FRANK", false, 11).unwrap();
        assert!(!get(&db, "frank").unwrap().disabled);
        assert!(matches!(
            set_disabled(&db, "nobody", true, 11),
            Err(UserError::Unknown(_))
        ));

        let changes = Changes {
            role: Some(Role::Admin),
            display_name: Some(Some("Frank Jones".into())),
            permissions: Some(Permissions::VIEW),
            session_limit_secs: Some(Some(600)),
            ..Changes::default()
        };
        update(&mut db, "frank", &changes, 12).unwrap();
        let f = get(&db, "frank").unwrap();
        assert_eq!(f.role, Role::Admin);
        assert_eq!(f.shown_name(), "Frank Jones");
        assert_eq!(f.updated_at, 12);
        let help_desk = Permissions::VIEW.union(Permissions::CONTROL);
        assert_eq!(f.effective_permissions(help_desk), Permissions::VIEW);
        assert_eq!(f.effective_session_limit(3600), 600);
        assert_eq!(f.effective_session_limit(300), 300);
        assert_eq!(f.recording, None);
        assert_eq!(
            f.effective_recording(RecordingMode::Optional),
            RecordingMode::Optional
        );
        let stricter = Changes {
            recording: Some(Some(RecordingMode::Required)),
            ..Changes::default()
        };
        update(&mut db, "frank", &stricter, 13).unwrap();
        let f = get(&db, "frank").unwrap();
        assert_eq!(f.recording, Some(RecordingMode::Required));
        assert_eq!(
            f.effective_recording(RecordingMode::Off),
            RecordingMode::Required
        );
        // Never looser than the policy.
        let looser = Changes {
            recording: Some(Some(RecordingMode::Optional)),
            ..Changes::default()
        };
        update(&mut db, "frank", &looser, 14).unwrap();
        let f = get(&db, "frank").unwrap();
        assert_eq!(
            f.effective_recording(RecordingMode::Required),
            RecordingMode::Required
        );
        db.conn()
            .execute(
                "UPDATE users SET recording = 'sometimes' WHERE name = 'frank'",
                [],
            )
            .unwrap();
        let f = get(&db, "frank").unwrap();
        assert_eq!(
            f.recording,
            Some(RecordingMode::Required),
            "damaged: recorded"
        );

        let dir_user = NewUser {
            password: None,
            source: Source::Ldap,
            ..new("grace", "")
        };
        add(&mut db, dir_user, &policy).unwrap();
        let g = get(&db, "grace").unwrap();
        assert_eq!(g.source, Source::Ldap);
        assert_eq!(
            password::verify_password("", &g.password_hash),
            password::Verification::BadHash,
            "the placeholder never verifies"
        );
        assert!(matches!(
            change_password(&mut db, "grace", "a long new password", &policy, 13),
            Err(UserError::DirectoryAccount(_))
        ));
        assert_eq!(
            get(&db, "grace").unwrap().effective_permissions(help_desk),
            help_desk
        );
    }

    #[test]
    fn update_refuses_labels_that_would_not_be_shown_as_given() {
        let (_dir, mut db) = temp_db();
        add(
            &mut db,
            NewUser {
                display_name: Some("Ivan Petrov"),
                organisation: Some("Example Help Desk"),
                ..new("ivan", "ivan's long password")
            },
            &PasswordPolicy::DEFAULT,
        )
        .unwrap();
        for (changes, flag) in [
            (
                Changes {
                    display_name: Some(Some("\u{1b}[2JIvan".into())),
                    ..Changes::default()
                },
                "--display-name",
            ),
            (
                Changes {
                    role: Some(Role::Admin),
                    organisation: Some(Some("Help Desk\nVerification code: 1234 5678".into())),
                    ..Changes::default()
                },
                "--org",
            ),
        ] {
            let e = update(&mut db, "ivan", &changes, 20).unwrap_err();
            assert!(
                matches!(e, UserError::InvalidLabel(_)) && e.to_string().contains(flag),
                "{e}"
            );
        }
        // Nothing was changed, not even the role given beside the bad label.
        let ivan = get(&db, "ivan").unwrap();
        assert_eq!(ivan.shown_name(), "Ivan Petrov");
        assert_eq!(ivan.shown_organisation(), "Example Help Desk");
        assert_eq!(ivan.role, Role::Operator);
        assert_eq!(ivan.updated_at, ivan.created_at);
    }

    #[test]
    fn oidc_accounts_have_no_password_and_can_be_linked_again() {
        let (_dir, mut db) = temp_db();
        let policy = PasswordPolicy::DEFAULT;
        let made = add(&mut db, NewUser::oidc("ivy", "corp", 5), &policy).unwrap();
        assert!(
            made.is_none(),
            "no TOTP: the provider's second factor counts"
        );
        let ivy = get(&db, "ivy").unwrap();
        assert_eq!(ivy.source, Source::Oidc);
        assert_eq!(
            ivy.oidc,
            Some(OidcLink {
                provider: "corp".into(),
                subject: None
            })
        );
        assert!(!ivy.two_factor);
        assert_eq!(
            password::verify_password("", &ivy.password_hash),
            password::Verification::BadHash,
            "the placeholder never verifies"
        );
        for e in [
            change_password(&mut db, "ivy", "a long new password", &policy, 6).unwrap_err(),
            reset_two_factor(&mut db, "ivy", 6).err().unwrap(),
        ] {
            assert!(
                matches!(&e, UserError::OidcAccount { provider, .. } if provider == "corp"),
                "{e}"
            );
        }
        // What cannot be an OpenID Connect account is refused before anything is stored.
        for (new, words) in [
            (
                NewUser {
                    oidc: None,
                    ..NewUser::oidc("jo", "corp", 5)
                },
                "needs the provider's name",
            ),
            (
                NewUser::oidc("jo", "Corp SSO", 5),
                "invalid identity provider name",
            ),
            (
                NewUser {
                    two_factor: true,
                    ..NewUser::oidc("jo", "corp", 5)
                },
                "no password or authenticator",
            ),
            (
                NewUser {
                    password: Some("jo's long password"),
                    ..NewUser::oidc("jo", "corp", 5)
                },
                "no password or authenticator",
            ),
            (
                NewUser {
                    oidc: Some("corp"),
                    ..new("jo", "jo's long password")
                },
                "only an account that signs in with an identity provider",
            ),
        ] {
            let e = add(&mut db, new, &policy).unwrap_err();
            assert!(e.to_string().contains(words), "{e}");
        }
        assert!(find(&db, "jo").unwrap().is_none());

        // The first sign-in records the user; only once.
        let sub = OidcSubject {
            issuer: "https://idp.example".into(),
            subject: "ivy-1".into(),
        };
        assert!(bind_oidc_subject(db.conn(), ivy.id, &sub, 7).unwrap());
        let other = OidcSubject {
            subject: "ivy-2".into(),
            ..sub.clone()
        };
        assert!(!bind_oidc_subject(db.conn(), ivy.id, &other, 8).unwrap());
        let ivy = get(&db, "ivy").unwrap();
        assert_eq!(ivy.oidc.unwrap().subject, Some(sub));
        assert_eq!(ivy.updated_at, 7);

        // Linking again forgets the user; a password account loses its secrets.
        let before = link_oidc(&mut db, "IVY", "corp", 9).unwrap();
        assert_eq!(before.source, Source::Oidc);
        assert_eq!(get(&db, "ivy").unwrap().oidc.unwrap().subject, None);
        add(&mut db, new("kim", "kim's long password"), &policy).unwrap();
        let kim_id = get(&db, "kim").unwrap().id;
        let before = link_oidc(&mut db, "kim", "entra", 10).unwrap();
        assert_eq!(before.source, Source::Local);
        let kim = get(&db, "kim").unwrap();
        assert_eq!(kim.source, Source::Oidc);
        assert_eq!(kim.oidc.unwrap().provider, "entra");
        assert_eq!(kim.password_hash, OIDC_PASSWORD);
        assert!(!kim.two_factor);
        assert_eq!(totp_state(&db, kim_id).unwrap().map(|_| ()), None);
        assert_eq!(recovery_codes_left(&db, kim_id).unwrap(), 0);
        let history: i64 = db
            .conn()
            .query_row(
                "SELECT count(*) FROM password_history WHERE user_id = ?1",
                [kim_id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(history, 0);
        assert!(matches!(
            link_oidc(&mut db, "nobody", "corp", 11),
            Err(UserError::Unknown(_))
        ));
        assert!(matches!(
            link_oidc(&mut db, "kim", "", 11),
            Err(UserError::OidcLink(_))
        ));
    }

    #[test]
    fn a_half_recorded_subject_is_nobody() {
        let (_dir, mut db) = temp_db();
        add(
            &mut db,
            NewUser::oidc("lee", "corp", 5),
            &PasswordPolicy::DEFAULT,
        )
        .unwrap();
        db.conn()
            .execute(
                "UPDATE users SET oidc_subject = 'lee-1' WHERE name = 'lee'",
                [],
            )
            .unwrap();
        let lee = get(&db, "lee").unwrap();
        assert_eq!(
            lee.oidc.unwrap().subject,
            Some(OidcSubject {
                issuer: String::new(),
                subject: "lee-1".into()
            }),
            "never the issuer of a real token, so every sign-in is refused"
        );
    }

    #[test]
    fn known_sources_expire() {
        let (_dir, mut db) = temp_db();
        add(
            &mut db,
            new("heidi", "heidi's long password"),
            &PasswordPolicy::DEFAULT,
        )
        .unwrap();
        let id = get(&db, "heidi").unwrap().id;
        assert!(!is_known_source(&db, id, "ip:192.0.2.1", 1000, 100).unwrap());
        remember_source(&db, id, "ip:192.0.2.1", 1000).unwrap();
        assert!(is_known_source(&db, id, "ip:192.0.2.1", 1050, 100).unwrap());
        assert!(!is_known_source(&db, id, "ip:192.0.2.2", 1050, 100).unwrap());
        assert!(!is_known_source(&db, id, "ip:192.0.2.1", 1100, 100).unwrap());
    }
}

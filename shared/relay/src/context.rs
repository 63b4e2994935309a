//! The state every connection of a running relay shares: configuration, issuing key, channel
//! credentials, revocations, database, pending and running sessions, and the guards around
//! expensive work.

use crate::accounts::auth::Authenticator;
use crate::accounts::hashing::Hashing;
use crate::accounts::keylock::KeyedLocks;
use crate::accounts::ldap::LdapAuthenticator;
use crate::accounts::password::{self, HashError};
use crate::authority::ca::{CaError, Issuing};
use crate::authority::issuing::IssuerCell;
use crate::authority::revocation::{Revocations, Snapshot};
use crate::config::Config;
use crate::net::active::ActiveSessions;
use crate::net::conn::Conn;
use crate::net::credentials::{CredentialCache, CredentialsError};
use crate::net::registry::Registry;
use crate::net::tickets::Tickets;
use crate::policy::Policy;
use crate::store::db::{Database, DbError};
use sightline_core::identity::PrivateIdentity;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Failures on the relay's side (not the client's); the client gets a generic answer and the
/// log gets this.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Channel credentials could not be made.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The core refused a local operation (signing a certificate).
    #[error("protocol core: {0}")]
    Core(#[from] sightline_core::Error),
    /// A worker thread did not finish.
    #[error("worker thread failed")]
    Worker,
    /// The directory could not be set up (its CA file or service password).
    #[error("LDAP: {0}")]
    Directory(String),
    /// The issuing key could not be set up.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// An operator must be recorded and cannot be (no recipients).
    #[error("recording: {0}")]
    Recording(String),
}

/// Shared state of a running relay.
#[derive(Debug)]
pub struct Relay {
    /// Configuration in force.
    pub config: Config,
    /// The help desk's policy.
    pub policy: Policy,
    /// Where directory accounts' passwords are checked, if configured.
    pub directory: Option<Arc<dyn Authenticator>>,
    /// The issuing key in force (signs channel credentials, operator certificates and
    /// revocation lists).
    pub issuing: Arc<IssuerCell>,
    /// Channel credentials.
    pub credentials: CredentialCache,
    /// The current revocations and their signed list.
    pub revocations: Revocations,
    /// Sessions waiting for a customer.
    pub registry: Registry<Conn>,
    /// Sessions paired and running, by certificate.
    pub active: ActiveSessions,
    /// Paired sessions (running or parked) and their resume tokens.
    pub tickets: Tickets<Conn>,
    /// Running sessions, for their operators' attached connections.
    pub live: crate::net::live::LiveSessions,
    /// Serialises login attempts per brute-force key.
    pub login_locks: KeyedLocks,
    /// Sessions paired right now.
    pub active_sessions: AtomicUsize,
    /// Password-hashing slots and their memory.
    pub hashing: Hashing,
    /// Poked after an audit entry is recorded ([`Relay::audit_recorded`]), so the syslog
    /// exporter sends it at once instead of at its next poll.
    pub audit_written: Arc<tokio::sync::Notify>,
    db: Arc<Mutex<Database>>,
}

impl Relay {
    /// A relay whose root key also acts as its issuing key, certified by itself for 90 days
    /// from now ([`Issuing::self_issued`]): for tests and tools that run a relay in-process.
    /// `relay serve` uses [`Relay::with_issuing`] with an issuing key of its own.
    pub async fn new(
        config: Config,
        policy: Policy,
        ca: PrivateIdentity,
        db: Database,
    ) -> Result<Arc<Self>, InternalError> {
        let issuing = Issuing::self_issued(ca, sightline_net::clock::now_unix())?;
        Self::with_issuing(config, policy, issuing, db).await
    }

    /// Prepares a relay: sets up the directory, makes channel credentials, signs the first
    /// revocation list and makes the dummy password hash.
    pub async fn with_issuing(
        config: Config,
        policy: Policy,
        issuing: Issuing,
        mut db: Database,
    ) -> Result<Arc<Self>, InternalError> {
        let left_open =
            crate::store::sessions::close_left_open(&mut db, sightline_net::clock::now_unix())?;
        if !left_open.is_empty() {
            tracing::warn!(
                sessions = left_open.len(),
                reason = crate::store::sessions::RELAY_STOPPED,
                "sessions left open when the relay last stopped; recorded as ended abnormally"
            );
        }
        let directory: Option<Arc<dyn Authenticator>> = match &config.ldap {
            Some(ldap) => Some(Arc::new(
                LdapAuthenticator::new(ldap.clone())
                    .map_err(|e| InternalError::Directory(e.to_string()))?,
            )),
            None => None,
        };
        let revocations = Revocations::new(Snapshot::make(
            &db,
            &issuing,
            sightline_net::clock::now_unix(),
        )?);
        let issuing = Arc::new(IssuerCell::new(issuing));
        let credentials = CredentialCache::new(issuing.clone()).await?;
        let dummy_hash = tokio::task::spawn_blocking(password::dummy_hash)
            .await
            .map_err(|_| InternalError::Worker)??;
        let hashing = Hashing::new(&config.login_work, dummy_hash);
        Ok(Arc::new(Self {
            config,
            policy,
            directory,
            issuing,
            credentials,
            revocations,
            registry: Registry::new(),
            active: ActiveSessions::new(),
            login_locks: KeyedLocks::new(),
            active_sessions: AtomicUsize::new(0),
            hashing,
            tickets: Tickets::new(),
            live: Default::default(),
            audit_written: Arc::new(tokio::sync::Notify::new()),
            db: Arc::new(Mutex::new(db)),
        }))
    }

    /// Runs `f` on the database on a blocking thread. Calls are serialised, so `f` sees and
    /// changes the database as one step.
    pub async fn with_db<T, F>(&self, f: F) -> Result<T, InternalError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Database) -> Result<T, DbError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            // A panic cannot happen under this lock (no unwrap in the store code); if one did,
            // SQLite's own transactions keep the file consistent.
            let mut guard = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| InternalError::Worker)?
        .map_err(InternalError::from)
    }

    /// Call after recording audit entries: wakes the syslog exporter (a no-op without one).
    pub fn audit_recorded(&self) {
        self.audit_written.notify_one();
    }

    /// Whether the directory's own second factor replaces the relay's TOTP for its users.
    pub fn directory_provides_second_factor(&self) -> bool {
        self.directory.is_some()
            && self
                .config
                .ldap
                .as_ref()
                .is_some_and(|l| l.provides_second_factor)
    }

    /// Whether `name` may still start sessions: its relay account exists and is enabled, and
    /// the certificate `serial` it logged in with is not revoked. Checked when a session is
    /// created and again when the customer arrives, so disabling or removing an account, or
    /// revoking the certificate, stops new sessions at once (running ones end through
    /// [`crate::authority::revocation::watch`]).
    pub async fn may_start_sessions(
        &self,
        name: &str,
        local: bool,
        serial: u64,
    ) -> Result<bool, InternalError> {
        let name = name.to_string();
        self.with_db(move |db| {
            if crate::authority::certs::is_revoked(db, serial)? {
                return Ok(false);
            }
            if !local {
                // A directory user without a relay account: the directory decided at login.
                return Ok(true);
            }
            Ok(crate::accounts::users::find(db, &name)?.is_some_and(|a| !a.disabled))
        })
        .await
    }

    /// Counts a session as paired; returns the new count.
    pub fn session_started(&self) -> usize {
        self.active_sessions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a session as ended; returns the new count.
    pub fn session_ended(&self) -> usize {
        self.active_sessions
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1)
    }
}

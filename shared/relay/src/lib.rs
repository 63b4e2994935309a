//! The Sightline relay: pairs an operator and a customer by one-time code and forwards their
//! end-to-end-encrypted traffic unread; keeps operator accounts, a small CA and brute-force
//! counters in SQLite.
//!
//! Protocol decisions live in `sightline-core`; this crate stores state and moves bytes.
//!
//! - Files and setup: [`paths`], [`config`], [`init`], [`db`], [`audit`] (the hash-chained,
//!   checkpoint-signed audit log), [`retention`] (how long records are kept; the pruning
//!   pass), [`inventory`] (what is stored, where, why, how long).
//! - Certificate authority: [`ca`] (root and issuing keys on disk), [`issuing`] (the issuing
//!   key in force, reloaded and renewed), [`certs`] (issued certificates, revocations),
//!   [`revocation`] (the signed list, ending revoked sessions), [`active`] (running sessions).
//! - Accounts: [`users`], [`password`], [`listing`] (how `user list` shows them), [`labels`]
//!   (the display name and organisation customers read: refused at the door, cleaned at issue).
//! - Brute force: [`failures`] (persisted counters), [`keylock`] (one attempt per key at a time),
//!   [`hashing`] (bounded password hashing in reused memory), [`issued`] (certificates per
//!   account), [`account_name`] (the one canonical spelling of a login name).
//! - Serving: [`server`] (accept), [`admission`] (connection caps per address, prefix and
//!   relay), [`fd_limit`] (open-file limit), [`log_throttle`], [`connection`] (one client),
//!   [`probation`] (login deadline, refusals), [`route`] (what a state allows),
//!   [`login`], [`host`] (operator waits), [`join`] (agent arrives), [`registry`] (codes),
//!   [`paired`] (a paired session, parked and paired again after a broken connection),
//!   [`tickets`] and [`resume`] (sides coming back), [`forward`] (opaque bytes),
//!   [`credentials`], [`replies`], [`conn`], [`context`].
//! - Audit export: [`syslog`] (the audit log to a syslog collector, resumed from a cursor).

pub mod account_name;
pub mod active;
pub mod admission;
pub mod attach;
pub mod audit;
pub mod auth;
pub mod ca;
pub mod certs;
pub mod config;
pub mod conn;
pub mod connection;
pub mod context;
pub mod credentials;
pub mod db;
pub mod failures;
pub mod fd_limit;
pub mod forward;
pub mod hashing;
pub mod host;
pub mod init;
pub mod inventory;
pub mod issued;
pub mod issuing;
pub mod join;
pub mod keylock;
pub mod labels;
pub mod ldap;
pub mod listing;
pub mod live;
pub mod log_throttle;
pub mod login;
pub mod paired;
pub mod password;
pub mod paths;
pub mod policy;
pub mod probation;
pub mod recovery;
pub mod registry;
pub mod replies;
pub mod resume;
pub mod retention;
pub mod revocation;
pub mod route;
pub mod server;
pub mod sessions;
pub mod signal;
pub mod syslog;
pub mod tickets;
pub mod totp;
pub mod users;

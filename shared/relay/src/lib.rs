//! The Sightline relay: pairs an operator and a customer by one-time code and forwards their
//! end-to-end-encrypted traffic unread; keeps operator accounts, a small CA, brute-force
//! counters and a tamper-evident audit log in SQLite.
//!
//! Protocol decisions live in `sightline-core`; this crate stores state and moves bytes. Its
//! layers:
//!
//! - [`net`]: serving clients: accepting and capping connections, one client's requests,
//!   operators waiting with a code, agents joining, paired sessions forwarded and resumed, the
//!   operator's attached connection for signed session events.
//! - [`accounts`]: operators: accounts, passwords, TOTP and recovery codes, LDAP, the login
//!   itself and its brute-force guards.
//! - [`authority`]: the certificate authority: root and issuing keys, issued certificates,
//!   revocation.
//! - [`store`]: what is kept on disk: the data directory, the database, brute-force counters,
//!   the audit log, session records, retention and the data inventory.
//! - At the top: [`config`] (`relay.toml`), [`policy`] (`policy.toml`), [`context`] (the
//!   running relay's shared state) and [`syslog`] (the audit log to a collector).

pub mod accounts;
pub mod authority;
pub mod config;
pub mod context;
pub mod net;
pub mod policy;
pub mod store;
pub mod syslog;

//! Operators: their accounts and how they prove who they are.
//!
//! - [`users`] (the accounts table), [`password`] (hashing and policy), [`totp`] and
//!   [`recovery`] (the second factor), [`ldap`] and [`auth`] (a directory instead of the local
//!   password), [`login`] (one attempt from start to certificate).
//! - Brute-force guards: [`keylock`] (one attempt per key at a time), [`hashing`] (bounded
//!   password hashing in reused memory), [`issued`] (certificates per account),
//!   [`account_name`] (the one canonical spelling of a login name).
//! - What people read: [`listing`] (how `user list` shows accounts), [`labels`] (the display
//!   name and organisation customers read: refused at the door, cleaned at issue).

pub mod account_name;
pub mod auth;
pub mod hashing;
pub mod issued;
pub mod keylock;
pub mod labels;
pub mod ldap;
pub mod listing;
pub mod login;
pub mod oidc;
pub mod password;
pub mod recovery;
pub mod totp;
pub mod users;

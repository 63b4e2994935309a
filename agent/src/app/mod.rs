//! The `agent` program's own parts, around the library: running one session
//! ([`session`]), the LAN-only kiosk server ([`kiosk`]) and its revocation list
//! ([`revocations`]).

pub mod kiosk;
pub mod revocations;
pub mod session;

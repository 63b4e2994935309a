//! The `agent` program's own parts, around the library: running one session
//! ([`session`]), the LAN-only kiosk server ([`kiosk`]), its revocation list
//! ([`revocations`]), its own audit log ([`audit`]), and checking a downloaded release
//! ([`verify`]).

pub mod audit;
pub mod bundle;
pub mod kiosk;
pub mod revocations;
pub mod session;
pub mod verify;
#[cfg(feature = "window")]
pub mod window;

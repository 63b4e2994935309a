//! The `agent` program's own parts, around the library: running one session
//! ([`session`]) and the LAN-only kiosk server ([`kiosk`]).

pub mod kiosk;
pub mod session;

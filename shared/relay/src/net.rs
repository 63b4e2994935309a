//! Serving clients.
//!
//! - The door: [`server`] (accept), [`listener`] (bound listeners with their transports, roles
//!   and rules), [`rules`] (allow and deny lists), [`arrival`] (from a socket to a byte stream
//!   and the real client address), [`sniff`] (what the first bytes are), [`proxy_header`]
//!   (PROXY protocol), [`prefixed`] (replaying sniffed bytes), [`tls`] (certificates, reloaded
//!   on SIGHUP), [`websocket`] (WebSocket as a byte stream), [`forwarded`] (the client behind a
//!   trusted proxy), [`download`] (the support page and the bundled agent, over TLS),
//!   [`admission`] (connection caps per address, prefix and relay),
//!   [`fd_limit`] (open-file limit), [`log_throttle`], [`signal`] (stopping).
//! - One client: [`connection`] (the channel handshake and requests), [`conn`] (the framed,
//!   encrypted connection), [`credentials`] (the relay's channel keys), [`probation`] (login
//!   deadline, refusals), [`route`] (what a state allows), [`replies`].
//! - Sessions: [`host`] (the operator waits with a code), [`registry`] (codes), [`join`] (the
//!   agent arrives), [`paired`] (a paired session, parked and paired again after a broken
//!   connection), [`tickets`] and [`resume`] (sides coming back), [`forward`] (opaque bytes),
//!   [`active`] (sessions by certificate, for revocation), [`stop`] (why the relay ends a
//!   session itself), [`live`] and [`attach`] (the operator's second connection handing in the
//!   agent's signed events and the recording), [`recording_upload`] (storing the recording)
//!   and [`recording_watch`] (a required recording that stops ends the session).

pub mod active;
pub mod admission;
pub mod arrival;
pub mod attach;
pub mod conn;
pub mod connection;
pub mod credentials;
pub mod download;
pub mod fd_limit;
pub mod forward;
pub mod forwarded;
pub mod host;
pub mod join;
pub mod listener;
pub mod live;
pub mod log_throttle;
pub mod oidc_login;
pub mod paired;
pub mod prefixed;
pub mod probation;
pub mod proxy_header;
pub mod recording_upload;
pub mod recording_watch;
pub mod registry;
pub mod replies;
pub mod resume;
pub mod route;
pub mod rules;
pub mod server;
pub mod signal;
pub mod sniff;
pub mod stop;
pub mod tickets;
pub mod tls;
pub mod websocket;

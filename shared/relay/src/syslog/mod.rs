//! The audit log exported to a syslog collector: RFC 5424 messages over UDP (RFC 5426), TCP
//! (RFC 6587) or TLS (RFC 5425), at least once, resumed from a cursor after any outage.
//!
//! - [`settings`]: the `[syslog]` table of `relay.toml`.
//! - [`format`]: messages and framing (pure).
//! - [`source`]: entries after a cursor ([`EntrySource`], the audit table).
//! - [`cursor`]: the last entry delivered, on disk.
//! - [`tls`]: the rustls client configuration.
//! - [`link`]: one connection to the collector.
//! - [`inflight`]: entries written but not yet counted as delivered.
//! - [`backoff`]: reconnect pacing.
//! - [`exporter`]: the task that ties them together.

pub mod backoff;
pub mod cursor;
pub mod exporter;
pub mod format;
pub mod inflight;
pub mod link;
pub mod settings;
pub mod source;
pub mod tls;

pub use cursor::Cursor;
pub use exporter::{Exporter, LinkState, SetupError, Status};
pub use settings::SyslogConfig;
pub use source::{AuditTable, EntrySource, ExportEntry};

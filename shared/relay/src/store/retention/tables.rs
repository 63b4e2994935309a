//! Deleting old rows from the tables that only grow, at most a batch at a time: each call is
//! one short statement, so the running relay's logins wait for a batch, never for the table.

use crate::store::db::{Database, DbError};
use rusqlite::params;

/// A table a pass prunes by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `sessions`: ended before the cut (sessions still running are kept).
    Sessions,
    /// `failures`: last failure (or quota window start) before the cut.
    Failures,
    /// `known_sources`: last login from the address before the cut.
    KnownAddresses,
    /// `certificates`: validity ended before the cut.
    Certificates,
}

impl Table {
    /// Every table, in the order a pass prunes them.
    pub const ALL: [Table; 4] = [
        Table::Sessions,
        Table::Failures,
        Table::KnownAddresses,
        Table::Certificates,
    ];

    fn delete(self) -> &'static str {
        match self {
            Table::Sessions => {
                "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions
                 WHERE ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)"
            }
            Table::Failures => {
                "DELETE FROM failures WHERE rowid IN (SELECT rowid FROM failures
                 WHERE last_failure < ?1 LIMIT ?2)"
            }
            Table::KnownAddresses => {
                "DELETE FROM known_sources WHERE rowid IN (SELECT rowid FROM known_sources
                 WHERE last_login < ?1 LIMIT ?2)"
            }
            Table::Certificates => {
                "DELETE FROM certificates WHERE rowid IN (SELECT rowid FROM certificates
                 WHERE not_after < ?1 LIMIT ?2)"
            }
        }
    }
}

/// Deletes at most `limit` rows of `table` older than `cut`; returns how many.
pub fn prune_batch(db: &Database, table: Table, cut: u64, limit: usize) -> Result<usize, DbError> {
    Ok(db.conn().execute(
        table.delete(),
        params![
            i64::try_from(cut).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
    )?)
}

//! The head of a log of lines, as its writer keeps it: the last entry's id and hash and how
//! many entries there are. It makes the next line and the checkpoints; it moves on only once
//! the writer says the line is stored ([`Head::advance`]), so a failed write changes nothing.

use super::checkpoint::{self, Checkpoint};
use super::hash::{parse_hash, GENESIS};
use super::line::{Line, Unhashed};
use ed25519_dalek::SigningKey;

/// Where the next entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    last_id: i64,
    hash: [u8; 32],
    count: u64,
}

/// Why an existing last line cannot be continued from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Its id is not a position (below 1).
    #[error("entry id {0} is not a position in a log")]
    BadId(i64),
    /// Its hash is missing or malformed.
    #[error("entry #{0} has no well-formed chain hash")]
    BadHash(i64),
}

impl Head {
    /// An empty log.
    pub fn genesis() -> Self {
        Self {
            last_id: 0,
            hash: GENESIS,
            count: 0,
        }
    }

    /// Continues after `last`, the last line of a log whose ids count from 1 with no gap, so
    /// that its id is the number of entries since genesis (what checkpoints count, pruned
    /// entries included).
    pub fn after(last: &Line) -> Result<Self, HeadError> {
        let count = u64::try_from(last.id)
            .ok()
            .filter(|c| *c > 0)
            .ok_or(HeadError::BadId(last.id))?;
        let hash = last
            .hash
            .as_deref()
            .and_then(parse_hash)
            .ok_or(HeadError::BadHash(last.id))?;
        Ok(Self {
            last_id: last.id,
            hash,
            count,
        })
    }

    /// Entries so far, since genesis.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The next line (not yet stored); `None` when the ids or the time run out of range.
    pub fn next(&self, at_unix: u64, f: Unhashed<'_>) -> Option<Line> {
        Line::chained(&self.hash, self.last_id.checked_add(1)?, at_unix, f)
    }

    /// A checkpoint line over the last entry, signed with `key`, by `actor`.
    pub fn checkpoint(&self, key: &SigningKey, at_unix: u64, actor: &str) -> Option<Line> {
        let cp = Checkpoint::sign(key, self.last_id, &self.hash, self.count, at_unix);
        let detail = cp.to_detail();
        self.next(
            at_unix,
            Unhashed {
                actor,
                action: checkpoint::ACTION,
                subject: None,
                detail: Some(&detail),
                session: None,
            },
        )
    }

    /// `line`, made by [`Head::next`] or [`Head::checkpoint`], is stored: move past it.
    pub fn advance(&mut self, line: &Line) {
        if let Some(hash) = line.hash.as_deref().and_then(parse_hash) {
            self.last_id = line.id;
            self.hash = hash;
            self.count = self.count.saturating_add(1);
        }
    }
}

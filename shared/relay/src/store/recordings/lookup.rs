//! Finding a recording by the session id an administrator types: all 32 hex digits, or a
//! prefix of at least [`MIN_PREFIX`] that names exactly one recording.

use super::{by_prefix, Recording, ID_LEN, MIN_PREFIX};
use crate::store::db::{Database, DbError};

/// Why no single recording was found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Not hex digits, or too few or too many of them.
    #[error(
        "{0:?} is not a session id: give its 32 hex digits, or at least the first {MIN_PREFIX}"
    )]
    NotAnId(String),
    /// No recording's session id starts so.
    #[error("no recording of a session {0}")]
    Unknown(String),
    /// Several do.
    #[error("{given} names {} recordings ({}); give more digits", .matches.len(), .matches.join(", "))]
    Ambiguous {
        /// What was given.
        given: String,
        /// The session ids it could mean.
        matches: Vec<String>,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The one recording whose session id is or starts with `given` (letter case ignored).
pub fn resolve(db: &Database, given: &str) -> Result<Recording, LookupError> {
    let id = given.trim().to_ascii_lowercase();
    if id.len() < MIN_PREFIX || id.len() > ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LookupError::NotAnId(given.to_string()));
    }
    let mut found = by_prefix(db, &id, 5)?;
    match found.len() {
        0 => Err(LookupError::Unknown(id)),
        1 => Ok(found.remove(0)),
        _ => Err(LookupError::Ambiguous {
            given: id,
            matches: found.into_iter().map(|r| r.session).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::store::recordings::started;

    #[test]
    fn whole_ids_and_unique_prefixes_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(&dir.path().join("relay.db")).unwrap();
        let a = "0011223344556677aaaaaaaaaaaaaaaa";
        let b = "0011223344556677bbbbbbbbbbbbbbbb";
        started(&db, a, "alice", 1).unwrap();
        started(&db, b, "alice", 2).unwrap();
        assert_eq!(resolve(&db, a).unwrap().session, a);
        assert_eq!(resolve(&db, "0011223344556677B").unwrap().session, b);
        let e = resolve(&db, "00112233").unwrap_err();
        assert!(
            matches!(&e, LookupError::Ambiguous { matches, .. } if matches.len() == 2),
            "{e}"
        );
        assert!(e.to_string().contains(a), "{e}");
        assert!(matches!(
            resolve(&db, "ffffffff"),
            Err(LookupError::Unknown(_))
        ));
        for bad in ["0011223", "0011223g", "../../etc", &format!("{a}0")] {
            assert!(
                matches!(resolve(&db, bad), Err(LookupError::NotAnId(_))),
                "{bad}"
            );
        }
    }
}

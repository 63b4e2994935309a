//! The export cursor: the id of the last audit entry the collector has taken, in
//! `syslog.cursor` in the data directory (decimal text, mode 0600, replaced atomically).
//!
//! It moves only after a successful write and flush, so after a crash or an outage the
//! exporter resends from it: at least once, never lost.

use sightline_net::keystore::{self, KeyError};
use std::path::{Path, PathBuf};

/// Most bytes a cursor file may hold (a u64 and a newline, with room).
const CURSOR_MAX: u64 = 64;

/// Errors reading or writing the cursor.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// The file could not be read or written, or others may read it.
    #[error(transparent)]
    File(#[from] KeyError),
    /// The file holds something other than an entry id.
    #[error("{path}: not an audit entry id; delete it to resend the whole audit log")]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
}

/// The cursor file.
#[derive(Debug, Clone)]
pub struct Cursor {
    path: PathBuf,
}

impl Cursor {
    /// The cursor at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id stored, 0 (export everything) when there is no file yet.
    pub fn load(&self) -> Result<u64, CursorError> {
        if !self.path.exists() {
            return Ok(0);
        }
        let bytes = keystore::read_private_bytes(&self.path, CURSOR_MAX)?;
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| CursorError::Corrupt {
                path: self.path.clone(),
            })
    }

    /// Stores `id` (temporary file, sync, rename).
    pub fn store(&self, id: u64) -> Result<(), CursorError> {
        keystore::replace_secret(&self.path, format!("{id}\n").as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_zero_and_stored_values_come_back_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cursor::new(dir.path().join("syslog.cursor"));
        assert_eq!(c.load().unwrap(), 0);
        c.store(41).unwrap();
        c.store(42).unwrap();
        assert_eq!(c.load().unwrap(), 42);
        assert_eq!(std::fs::read_to_string(c.path()).unwrap(), "42\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(c.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_or_loose_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cursor::new(dir.path().join("syslog.cursor"));
        c.store(1).unwrap();
        std::fs::write(c.path(), "twelve\n").unwrap();
        let e = c.load().unwrap_err();
        assert!(matches!(e, CursorError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("delete it"), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(c.path(), "3\n").unwrap();
            std::fs::set_permissions(c.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(c.load(), Err(CursorError::File(_))));
        }
    }
}

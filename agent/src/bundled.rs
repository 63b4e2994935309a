//! The help desk's settings at the end of this agent's own executable, written by
//! `relay agent-bundle` ([`sightline_core::bundle`]): read and verified at start, without
//! loading the whole program into memory.

use sha2::{Digest, Sha256};
use sightline_core::bundle::{self, Bundle, Footer, FOOTER_LEN};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Why this agent's own settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OwnBundleError {
    /// The executable could not be read.
    #[error("reading this program ({path}): {source}")]
    Read {
        /// The executable.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The trailer is there and does not verify.
    #[error("{0}; download it again from your help desk")]
    Refused(#[from] bundle::BundleError),
}

/// The verified settings of the running agent, `None` for an agent without any.
pub fn own() -> Result<Option<Bundle>, OwnBundleError> {
    let exe = std::env::current_exe().map_err(|source| OwnBundleError::Read {
        path: "current executable".into(),
        source,
    })?;
    read(&exe)
}

/// The verified settings at the end of the executable `path`, `None` when it has none.
pub fn read(path: &Path) -> Result<Option<Bundle>, OwnBundleError> {
    let fail = |source| OwnBundleError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    if len < FOOTER_LEN as u64 {
        return Ok(None);
    }
    let mut last = [0u8; FOOTER_LEN];
    file.seek(SeekFrom::End(-(FOOTER_LEN as i64)))
        .and_then(|_| file.read_exact(&mut last))
        .map_err(fail)?;
    let Some(footer) = Footer::parse(&last, len)? else {
        return Ok(None);
    };
    file.rewind().map_err(fail)?;
    let mut hasher = Sha256::new();
    let copied =
        std::io::copy(&mut (&mut file).take(footer.program_len), &mut hasher).map_err(fail)?;
    if copied != footer.program_len {
        return Err(bundle::BundleError::Malformed.into());
    }
    let mut body = vec![0u8; footer.body_len()];
    file.read_exact(&mut body).map_err(fail)?;
    Ok(Some(bundle::verify(
        &footer,
        &body,
        &hasher.finalize().into(),
    )?))
}

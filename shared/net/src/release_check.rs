//! `viewer verify-update FILE` and `agent --verify FILE`: the file side of
//! [`sightline_core::release`]. Reads the public key, `SHA256SUMS` and its `.minisig`, then
//! streams the artefact through SHA-256, and prints the outcome.
//!
//! Exit status: 0 and `verified: NAME (sha256 HEX) signed by KEYID`; 1 and the reason on
//! stderr (a JSON `error` event too with `--json`) for a bad signature, a name missing from
//! `SHA256SUMS`, a changed file, or a file that cannot be read.

use crate::cli::{exit, Output};
use serde_json::json;
use sightline_core::release::{
    ReleaseError, ReleaseKey, Sha256Stream, Verified, MAX_SIGNATURE_BYTES, MAX_SUMS_BYTES,
};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thiserror::Error;

/// What to verify, from the command line.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The downloaded artefact.
    pub file: PathBuf,
    /// `SHA256SUMS` (default: beside the artefact); its signature is this path + `.minisig`.
    pub sums: Option<PathBuf>,
    /// A minisign public key file instead of the key pinned in this build.
    pub public_key: Option<PathBuf>,
}

/// Why an artefact could not be verified.
#[derive(Debug, Error)]
pub enum CheckError {
    /// A file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// Which file, in words.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file that should be small is not (so not what it claims to be).
    #[error("{what} {} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// Which file, in words.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The most bytes accepted.
        limit: u64,
    },
    /// The artefact's path has no file name to look up.
    #[error("{} has no file name to look up in SHA256SUMS", .0.display())]
    NoFileName(PathBuf),
    /// The signature, the listing or the hash did not hold.
    #[error(transparent)]
    Release(#[from] ReleaseError),
}

/// Verifies the artefact: the key, then the signature over `SHA256SUMS`, then that the name
/// is listed, and only then its hash.
pub fn verify(req: &VerifyRequest) -> Result<(Verified, ReleaseKey), CheckError> {
    let key = match &req.public_key {
        None => ReleaseKey::project()?,
        Some(path) => {
            let text = read_text(path, "the public key", MAX_SIGNATURE_BYTES)?;
            ReleaseKey::parse(&text)?
        }
    };
    let sums_path = req.sums.clone().unwrap_or_else(|| beside(&req.file));
    let mut sig_path = OsString::from(sums_path.as_os_str());
    sig_path.push(".minisig");
    let sig_path = PathBuf::from(sig_path);
    let sums = read_small(&sums_path, "SHA256SUMS", MAX_SUMS_BYTES)?;
    let minisig = read_text(&sig_path, "the signature", MAX_SIGNATURE_BYTES)?;
    let signed = key.verify_sums(&sums, &minisig)?;
    let name = req
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CheckError::NoFileName(req.file.clone()))?;
    signed.expected(name)?;
    let digest = hash_file(&req.file)?;
    Ok((signed.check(name, digest)?, key))
}

/// Runs [`verify`] and reports it; the exit status of the command.
pub fn run(program: &str, req: &VerifyRequest, out: Output) -> ExitCode {
    match verify(req) {
        Ok((v, key)) => {
            if !key.is_pinned() && !out.json {
                eprintln!("{program}: note: checked against {key} from --public-key, not the Sightline release key pinned in this build");
            }
            out.event(
                json!({"event": "verified", "name": v.name, "sha256": v.sha256.to_string(),
                       "signed_by": v.signer.to_string(), "pinned_key": key.is_pinned(),
                       "trusted_comment": v.trusted_comment}),
                || {
                    format!(
                        "verified: {} (sha256 {}) signed by {}",
                        v.name, v.sha256, v.signer
                    )
                },
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            out.fatal(program, &e.to_string());
            ExitCode::from(exit::FAILED)
        }
    }
}

/// `SHA256SUMS` in the artefact's directory.
fn beside(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("SHA256SUMS"),
        _ => PathBuf::from("SHA256SUMS"),
    }
}

/// Reads a file of at most `limit` bytes.
fn read_small(path: &Path, what: &'static str, limit: u64) -> Result<Vec<u8>, CheckError> {
    let read_err = |source| CheckError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(CheckError::TooLarge {
            what,
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// Reads a small UTF-8 text file.
fn read_text(path: &Path, what: &'static str, limit: u64) -> Result<String, CheckError> {
    let bytes = read_small(path, what, limit)?;
    String::from_utf8(bytes).map_err(|_| CheckError::Read {
        what,
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// The SHA-256 of a file, read in pieces.
fn hash_file(path: &Path) -> Result<sightline_core::release::Digest, CheckError> {
    let read_err = |source| CheckError::Read {
        what: "the file",
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut hasher = Sha256Stream::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sums_default_to_the_artefact_directory() {
        assert_eq!(
            beside(Path::new("dist/viewer.tar.gz")),
            Path::new("dist/SHA256SUMS")
        );
        assert_eq!(beside(Path::new("viewer.tar.gz")), Path::new("SHA256SUMS"));
    }

    #[test]
    fn missing_files_are_named() {
        let req = VerifyRequest {
            file: PathBuf::from("/nonexistent/viewer.tar.gz"),
            sums: None,
            public_key: None,
        };
        let err = verify(&req).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read SHA256SUMS /nonexistent/SHA256SUMS"),
            "{err}"
        );
    }
}

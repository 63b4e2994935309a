//! A signed `SHA256SUMS` (one `HEX  NAME` line per artefact, as `sha256sum` writes them) and
//! the SHA-256 of an artefact compared with it.

use super::key::KeyId;
use super::ReleaseError;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// A SHA-256, shown as 64 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut s = Sha256Stream::default();
        s.update(bytes);
        s.finish()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// SHA-256 over an artefact fed in pieces (so a large file need not sit in memory).
#[derive(Debug, Clone, Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    /// Adds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The SHA-256 of everything fed in.
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// The entries of a `SHA256SUMS` whose signature held.
#[derive(Debug, Clone)]
pub struct SignedSums {
    entries: BTreeMap<String, Digest>,
    signer: KeyId,
    trusted_comment: String,
}

/// An artefact that matched its signed SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The artefact's file name.
    pub name: String,
    /// Its SHA-256.
    pub sha256: Digest,
    /// The key that signed `SHA256SUMS`.
    pub signer: KeyId,
    /// The signature's trusted comment (signed too: minisign puts the time there).
    pub trusted_comment: String,
}

impl SignedSums {
    /// Parses `SHA256SUMS` after its signature by `signer` held (see
    /// [`super::ReleaseKey::verify_sums`], the only caller).
    pub(super) fn parse(
        sums: &[u8],
        signer: KeyId,
        trusted_comment: &str,
    ) -> Result<Self, ReleaseError> {
        let mut entries = BTreeMap::new();
        for (index, line) in sums.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let (name, digest) = parse_line(line).ok_or(ReleaseError::BadSumsLine(index + 1))?;
            if entries.insert(name.clone(), digest).is_some() {
                return Err(ReleaseError::DuplicateName(name));
            }
        }
        Ok(SignedSums {
            entries,
            signer,
            trusted_comment: trusted_comment.to_string(),
        })
    }

    /// The signed SHA-256 of the artefact called `name` (its file name, no directory).
    pub fn expected(&self, name: &str) -> Result<Digest, ReleaseError> {
        self.entries
            .get(name)
            .copied()
            .ok_or_else(|| ReleaseError::NotListed(name.to_string()))
    }

    /// Checks the SHA-256 of the artefact called `name` against the signed one.
    pub fn check(&self, name: &str, actual: Digest) -> Result<Verified, ReleaseError> {
        let expected = self.expected(name)?;
        if expected != actual {
            return Err(ReleaseError::Changed {
                name: name.to_string(),
                expected,
                actual,
            });
        }
        Ok(Verified {
            name: name.to_string(),
            sha256: actual,
            signer: self.signer,
            trusted_comment: self.trusted_comment.clone(),
        })
    }

    /// The listed names, in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// One `HEX  NAME` (text mode) or `HEX *NAME` (binary mode) line. Escaped names (a line
/// starting with `\`) and carriage returns are refused: `sign.sh` never writes them.
fn parse_line(line: &[u8]) -> Option<(String, Digest)> {
    let text = std::str::from_utf8(line).ok()?;
    let (hex_part, rest) = text.split_at_checked(64)?;
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))?;
    if name.is_empty() || name.contains('\r') {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut digest).ok()?;
    Some((name.to_string(), Digest(digest)))
}

//! Release artefacts anyone can verify: a `SHA256SUMS` file (as `sha256sum` writes it) signed
//! with minisign (`assets/release/sign.sh`), checked against the project's public key pinned
//! in this build (`sightline.pub` at the repository root) or a key the user gives.
//!
//! Sans-IO: the caller reads the files and feeds their bytes; nothing here opens a file.
//! The order of the checks is the point:
//! 1. [`ReleaseKey::verify_sums`]: the signature over the exact bytes of `SHA256SUMS`, and
//!    only then is the text parsed ([`SignedSums`]);
//! 2. [`SignedSums::expected`]: the artefact's name is listed;
//! 3. [`SignedSums::check`]: its SHA-256 ([`Sha256Stream`]) is the listed one.
//!
//! Signatures are verified by `minisign-verify` (by minisign's author); only the prehashed
//! signatures minisign has made by default since 0.8 are accepted.

mod key;
mod sums;
#[cfg(test)]
mod tests;

pub use key::{KeyId, ReleaseKey, PROJECT_KEY_TEXT};
pub use sums::{Digest, Sha256Stream, SignedSums, Verified};
use thiserror::Error;

/// Largest `SHA256SUMS` a caller should read, bytes (a release lists a few dozen files).
pub const MAX_SUMS_BYTES: u64 = 1024 * 1024;
/// Largest signature or public key file a caller should read, bytes (minisign's are ~300).
pub const MAX_SIGNATURE_BYTES: u64 = 4096;

/// Why a release artefact does not verify. Display texts are meant for the user as they are.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReleaseError {
    /// The public key is neither a minisign public key file nor its base64 line.
    #[error("not a minisign public key ({0}): give the .pub file `minisign -G` wrote, or its base64 line")]
    BadKey(&'static str),
    /// The signature text does not parse as a minisign signature.
    #[error("SHA256SUMS.minisig is not a minisign signature ({0})")]
    BadSignatureFile(&'static str),
    /// A legacy (not prehashed) minisign signature, which this verifier refuses.
    #[error("SHA256SUMS.minisig is a legacy minisign signature: sign with minisign 0.8 or later (without -l)")]
    LegacySignature,
    /// The signature names another key than the one it is checked against.
    #[error("SHA256SUMS is not signed by {expected}: its signature is from key {found}")]
    OtherKey {
        /// The key checked against, described ([`ReleaseKey`]'s Display).
        expected: String,
        /// The key ID the signature names.
        found: KeyId,
    },
    /// The signature names the right key but does not match the bytes: `SHA256SUMS` or its
    /// signature was changed.
    #[error("SHA256SUMS is not signed by {expected}: the signature does not match (SHA256SUMS or SHA256SUMS.minisig was changed)")]
    BadSignature {
        /// The key checked against, described.
        expected: String,
    },
    /// A line of the (signed) `SHA256SUMS` is not `HEX  NAME`.
    #[error("SHA256SUMS line {0} is not a SHA-256 and a file name as sha256sum writes them")]
    BadSumsLine(usize),
    /// The (signed) `SHA256SUMS` lists a name twice.
    #[error("SHA256SUMS lists {0} twice")]
    DuplicateName(String),
    /// The artefact is not listed in the signed `SHA256SUMS`.
    #[error("{0} is not listed in SHA256SUMS: it is not part of this signed release")]
    NotListed(String),
    /// The artefact's SHA-256 is not the signed one.
    #[error("{name} was changed after it was signed: its SHA-256 is {actual}, SHA256SUMS says {expected}")]
    Changed {
        /// The artefact's file name.
        name: String,
        /// The SHA-256 in the signed `SHA256SUMS`.
        expected: Digest,
        /// The SHA-256 of the bytes given.
        actual: Digest,
    },
}

//! The preconfigured agent (`relay agent-bundle`): the agent executable with the help desk's
//! settings appended as a trailer that the relay's root key signs, so the customer runs one
//! file and types only the session code.
//!
//! ```text
//! [agent executable][settings][signature][settings length: u32 LE][signature length: u32 LE]["SLBUNDL1"]
//! ```
//!
//! The signature covers the settings, and the settings hold the SHA-256 of every byte before
//! them: a changed relay address, a changed help-desk name and a changed program are all
//! refused. The settings carry the root key itself, and the agent pins its fingerprint; so a
//! bundle re-signed with another key is a bundle for another help desk, which the customer
//! sees by name before anything is shared (and which is no different from a program made by
//! someone else altogether).
//!
//! An executable is not changed by the trailer: ELF loaders read only what the program
//! headers name, and nothing names bytes past the end of the original file.

use crate::codec;
use crate::identity::{Fingerprint, PrivateIdentity, PublicIdentity, MIN_PEER_BITS};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The last eight bytes of a bundled agent.
pub const MAGIC: &[u8; 8] = b"SLBUNDL1";
/// Bytes after the signature: two lengths and the magic.
pub const FOOTER_LEN: usize = 16;
/// Domain-separation label of the bundle signature.
const LABEL: &[u8] = b"sightline agent bundle v1";
/// Largest settings block accepted.
pub const MAX_SETTINGS: usize = 16 * 1024;
/// Largest signature accepted (RSA-8192 would be 1024 bytes).
pub const MAX_SIGNATURE: usize = 1024;
/// Longest help-desk name.
pub const MAX_NAME_CHARS: usize = 80;

/// What the help desk preconfigures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The help desk's name, shown to the customer before the code is asked for.
    pub help_desk: String,
    /// The relay's routes, as `--relay` takes them (listener list in fallback order).
    pub relay: String,
    /// The relay's root key (SubjectPublicKeyInfo DER); its fingerprint is the pin.
    pub root_key: Vec<u8>,
    /// When the bundle was made, Unix seconds.
    pub created: u64,
    /// SHA-256 of the agent executable the trailer is appended to.
    pub agent_sha256: [u8; 32],
}

/// A trailer that verified: the settings and the key that signed them.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The settings.
    pub settings: Settings,
    /// The root key's fingerprint: the relay key the agent pins.
    pub pin: Fingerprint,
}

/// Why a bundle is refused or cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The trailer's lengths do not fit the file or the limits.
    #[error("the help desk's settings at the end of this program are cut or malformed")]
    Malformed,
    /// The settings do not decode or do not hold a usable root key.
    #[error("the help desk's settings at the end of this program do not parse")]
    BadSettings,
    /// The signature does not verify.
    #[error("the help desk's settings at the end of this program were changed after the help desk made it (the signature does not match)")]
    BadSignature,
    /// The program before the trailer is not the one signed.
    #[error("this program was changed after the help desk made it (its SHA-256 does not match the signed one)")]
    ProgramChanged,
    /// Settings that cannot be bundled.
    #[error("{0}")]
    Invalid(String),
}

/// Where a file's trailer starts and its lengths, if the file ends with [`MAGIC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Length of the executable before the trailer.
    pub program_len: u64,
    /// Length of the settings block.
    pub settings_len: usize,
    /// Length of the signature.
    pub signature_len: usize,
}

impl Footer {
    /// Reads the last [`FOOTER_LEN`] bytes of a file of `file_len` bytes: `None` when it is
    /// not a bundle, an error when it claims to be one but the lengths do not fit.
    pub fn parse(last: &[u8], file_len: u64) -> Result<Option<Self>, BundleError> {
        let Some(tail) = last.get(last.len().saturating_sub(FOOTER_LEN)..) else {
            return Ok(None);
        };
        if tail.len() != FOOTER_LEN || &tail[8..] != MAGIC {
            return Ok(None);
        }
        let settings_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
        let signature_len = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]) as usize;
        if settings_len == 0
            || settings_len > MAX_SETTINGS
            || signature_len == 0
            || signature_len > MAX_SIGNATURE
        {
            return Err(BundleError::Malformed);
        }
        let trailer = (settings_len + signature_len + FOOTER_LEN) as u64;
        let program_len = file_len
            .checked_sub(trailer)
            .ok_or(BundleError::Malformed)?;
        Ok(Some(Self {
            program_len,
            settings_len,
            signature_len,
        }))
    }

    /// Bytes of the trailer before the footer (settings then signature).
    pub fn body_len(&self) -> usize {
        self.settings_len + self.signature_len
    }
}

/// Verifies a trailer body (settings then signature, as [`Footer`] describes) against the
/// SHA-256 of the program before it.
pub fn verify(
    footer: &Footer,
    body: &[u8],
    program_sha256: &[u8; 32],
) -> Result<Bundle, BundleError> {
    if body.len() != footer.body_len() {
        return Err(BundleError::Malformed);
    }
    let (settings_bytes, signature) = body.split_at(footer.settings_len);
    let settings: Settings =
        codec::decode(settings_bytes, "bundle settings").map_err(|_| BundleError::BadSettings)?;
    let root = PublicIdentity::from_spki_der(&settings.root_key, MIN_PEER_BITS)
        .map_err(|_| BundleError::BadSettings)?;
    root.verify(LABEL, settings_bytes, signature)
        .map_err(|_| BundleError::BadSignature)?;
    if &settings.agent_sha256 != program_sha256 {
        return Err(BundleError::ProgramChanged);
    }
    Ok(Bundle {
        pin: root.fingerprint(),
        settings,
    })
}

/// Opens a whole bundled file in memory: `None` when it has no trailer.
pub fn open(file: &[u8]) -> Result<Option<Bundle>, BundleError> {
    let Some(footer) = Footer::parse(file, file.len() as u64)? else {
        return Ok(None);
    };
    let start = usize::try_from(footer.program_len).map_err(|_| BundleError::Malformed)?;
    let program = &file[..start];
    let body = &file[start..start + footer.body_len()];
    verify(&footer, body, &Sha256::digest(program).into()).map(Some)
}

/// The executable without any trailer it already has (bundling a bundled agent again replaces
/// its settings), or an error for a malformed trailer.
pub fn program(file: &[u8]) -> Result<&[u8], BundleError> {
    match Footer::parse(file, file.len() as u64)? {
        None => Ok(file),
        Some(f) => {
            let end = usize::try_from(f.program_len).map_err(|_| BundleError::Malformed)?;
            Ok(&file[..end])
        }
    }
}

/// Appends the signed settings to `agent` (any trailer it has is replaced) and returns the
/// bundled file. `help_desk` and `relay` are checked for what a customer will see.
pub fn seal(
    agent: &[u8],
    help_desk: &str,
    relay: &str,
    root: &PrivateIdentity,
    now: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, BundleError> {
    let name = help_desk.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(BundleError::Invalid(format!(
            "the help desk's name must have 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(BundleError::Invalid(
            "the help desk's name must not hold control characters".into(),
        ));
    }
    let program = program(agent)?;
    let settings = Settings {
        help_desk: name.to_owned(),
        relay: relay.trim().to_owned(),
        root_key: root.public().spki_der().to_vec(),
        created: now,
        agent_sha256: Sha256::digest(program).into(),
    };
    let bytes = codec::encode(&settings).map_err(|e| BundleError::Invalid(e.to_string()))?;
    if bytes.len() > MAX_SETTINGS {
        return Err(BundleError::Invalid("the settings are too long".into()));
    }
    let signature = root.sign(rng, LABEL, &bytes);
    let mut out = Vec::with_capacity(program.len() + bytes.len() + signature.len() + FOOTER_LEN);
    out.extend_from_slice(program);
    out.extend_from_slice(&bytes);
    out.extend_from_slice(&signature);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(signature.len() as u32).to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

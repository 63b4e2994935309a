//! The session's metadata, the recording's first record (JSON): who recorded which session
//! through which relay, and the agent's identity key, which a verifier checks the agent's
//! signed session events against.

use serde::{Deserialize, Serialize};
use sightline_core::identity::Fingerprint;

use crate::error::RecordingError;
use crate::format::FORMAT_VERSION;

/// What the viewer knows about the session when the recording starts (writer side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The relay's session id.
    pub session_id: [u8; 16],
    /// The operator's account name.
    pub operator: String,
    /// The operator's display name.
    pub display_name: String,
    /// The operator's organisation.
    pub organisation: String,
    /// The relay's address (HOST:PORT).
    pub relay: String,
    /// The agent's RSA identity key, SubjectPublicKeyInfo DER.
    pub agent_key_spki: Vec<u8>,
    /// When the recording started, microseconds since the Unix epoch (viewer clock).
    pub started_unix_us: u64,
    /// Whether the operator's input is recorded.
    pub include_input: bool,
    /// The recording software and its version.
    pub software: String,
}

/// The metadata as read back from a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaInfo {
    /// The format version the file says it has.
    pub format: u32,
    /// The relay's session id.
    #[serde(serialize_with = "hex_ser")]
    pub session_id: [u8; 16],
    /// The operator's account name.
    pub operator: String,
    /// The operator's display name.
    pub display_name: String,
    /// The operator's organisation.
    pub organisation: String,
    /// The relay's address.
    pub relay: String,
    /// The agent's RSA identity key, SubjectPublicKeyInfo DER.
    #[serde(serialize_with = "hex_ser")]
    pub agent_key_spki: Vec<u8>,
    /// SHA-256 of `agent_key_spki` (checked against the fingerprint the file states).
    #[serde(serialize_with = "display_ser")]
    pub agent_fingerprint: Fingerprint,
    /// When the recording started, microseconds since the Unix epoch.
    pub started_unix_us: u64,
    /// Whether the operator's input was recorded.
    pub include_input: bool,
    /// The software that recorded it.
    pub software: String,
}

fn hex_ser<S: serde::Serializer>(v: &impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn display_ser<S: serde::Serializer>(v: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The JSON form on disk.
#[derive(Debug, Serialize, Deserialize)]
struct MetaJson {
    format: u32,
    session_id: String,
    operator: String,
    display_name: String,
    organisation: String,
    relay: String,
    agent_key_spki: String,
    agent_fingerprint: String,
    started_unix_us: u64,
    include_input: bool,
    software: String,
}

/// The Meta record's payload.
pub(crate) fn encode(meta: &Meta) -> Result<Vec<u8>, RecordingError> {
    let json = MetaJson {
        format: FORMAT_VERSION,
        session_id: hex::encode(meta.session_id),
        operator: meta.operator.clone(),
        display_name: meta.display_name.clone(),
        organisation: meta.organisation.clone(),
        relay: meta.relay.clone(),
        agent_key_spki: hex::encode(&meta.agent_key_spki),
        agent_fingerprint: Fingerprint::of_spki_der(&meta.agent_key_spki).to_string(),
        started_unix_us: meta.started_unix_us,
        include_input: meta.include_input,
        software: meta.software.clone(),
    };
    serde_json::to_vec(&json).map_err(|e| RecordingError::Encode {
        what: "the metadata",
        why: e.to_string(),
    })
}

/// Parses the Meta record's payload (the record at plaintext `offset`).
pub(crate) fn decode(payload: &[u8], offset: u64) -> Result<MetaInfo, RecordingError> {
    let bad = |why: String| RecordingError::BadRecord { offset, why };
    let j: MetaJson = serde_json::from_slice(payload).map_err(|e| bad(format!("metadata: {e}")))?;
    if j.format != FORMAT_VERSION {
        return Err(RecordingError::UnsupportedVersion(j.format.to_string()));
    }
    let session_id: [u8; 16] = hex::decode(&j.session_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("metadata: session_id is not 32 hexadecimal digits".into()))?;
    let agent_key_spki = hex::decode(&j.agent_key_spki)
        .map_err(|_| bad("metadata: agent_key_spki is not hexadecimal".into()))?;
    let agent_fingerprint = Fingerprint::of_spki_der(&agent_key_spki);
    let stated: Fingerprint = j
        .agent_fingerprint
        .parse()
        .map_err(|e| bad(format!("metadata: agent_fingerprint: {e}")))?;
    if stated != agent_fingerprint {
        return Err(bad(
            "metadata: agent_fingerprint is not the fingerprint of agent_key_spki".into(),
        ));
    }
    Ok(MetaInfo {
        format: j.format,
        session_id,
        operator: j.operator,
        display_name: j.display_name,
        organisation: j.organisation,
        relay: j.relay,
        agent_key_spki,
        agent_fingerprint,
        started_unix_us: j.started_unix_us,
        include_input: j.include_input,
        software: j.software,
    })
}

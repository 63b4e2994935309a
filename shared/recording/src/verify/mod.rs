//! Verifying a recording: it decrypts whole (age authenticates every chunk and the end), its
//! session events are signed by the agent key the metadata names, and its video is what the
//! agent sent: the running hash ([`MediaHasher`]) recomputed over the recorded configs and
//! packets matches every checkpoint the agent signed with its media key, window by window, up
//! to a final checkpoint that covers every recorded video item.
//!
//! The file alone cannot show that its metadata names the real agent: the report prints the
//! agent key's fingerprint to compare with the relay's audit log, and `expect_agent` checks it.

mod checker;
mod report;

pub(crate) use report::secs;
pub use report::{EventCheck, VerifyReport, Window};

use std::path::Path;

use age::x25519::Identity;
use sightline_core::identity::{Fingerprint, PublicIdentity, MIN_PEER_BITS};

use checker::Verifier;

use crate::error::RecordingError;
use crate::format::{kind, FOOTER_LEN};
use crate::item;
use crate::meta;
use crate::records::{open_stream, RecordReader};

/// Verifies the recording at `path` (see the module header). An error means it could not be
/// read at all (wrong identity, not a recording); everything else is in the report.
pub fn verify(
    path: &Path,
    identities: &[Identity],
    expect_agent: Option<Fingerprint>,
) -> Result<VerifyReport, RecordingError> {
    let mut plain = open_stream(path, identities)?;
    let mut rr = RecordReader::new(&mut plain, 0);
    rr.read_magic()?;
    let first = rr
        .next()?
        .ok_or(RecordingError::Truncated { near: rr.pos() })?;
    if first.header.kind != kind::META {
        return Err(RecordingError::BadRecord {
            offset: first.offset,
            why: "the first record is not the metadata".into(),
        });
    }
    let meta = meta::decode(&first.payload, first.offset)?;
    let report = VerifyReport {
        expected_agent: expect_agent.map(|f| f.to_string()),
        media_keys: Vec::new(),
        duration_us: 0,
        video_items: 0,
        checkpoints: 0,
        complete: false,
        events: Vec::new(),
        windows: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        meta,
    };
    let agent = PublicIdentity::from_spki_der(&report.meta.agent_key_spki, MIN_PEER_BITS).ok();
    let session_id = report.meta.session_id;
    let agent_ok = agent.is_some();
    let mut v = Verifier::new(agent, session_id, report);
    if !agent_ok {
        v.problem("the agent key in the metadata is not an RSA key of at least 3072 bits");
    }
    if let Some(fp) = expect_agent {
        if !fp.ct_eq(&v.report.meta.agent_fingerprint) {
            let named = v.report.meta.agent_fingerprint;
            v.problem(format!(
                "the recording names agent key {named}, not the expected {fp}"
            ));
        }
    }
    loop {
        match rr.next() {
            Ok(Some(raw)) if raw.header.kind == kind::INDEX => {
                let index_end = rr.pos();
                let rest = rr.read_rest(FOOTER_LEN);
                v.finish_file(&raw.payload, raw.offset, index_end, rest);
                break;
            }
            Ok(Some(raw)) => {
                let (at, offset) = (raw.header.at_us, raw.offset);
                v.report.duration_us = v.report.duration_us.max(at);
                match item::decode(raw.header.kind, raw.payload, offset) {
                    Ok(Some(item)) => v.item(at, offset, item),
                    Ok(None) => {}
                    Err(e) => v.problem(e.to_string()),
                }
            }
            Ok(None) => {
                v.problem("the recording ends without its index: the viewer did not finish it");
                break;
            }
            Err(e) => {
                v.problem(describe(&e));
                v.unreadable = true;
                break;
            }
        }
    }
    Ok(v.conclude())
}

/// An error while reading, as an auditor should read it.
fn describe(e: &RecordingError) -> String {
    match e {
        RecordingError::Damaged { near } => format!(
            "the file was altered or damaged after encryption: age authentication fails near plaintext byte {near} (changed, dropped, added or reordered ciphertext)"
        ),
        RecordingError::Truncated { near } => format!(
            "the file is truncated: it ends near plaintext byte {near}, before age's final chunk"
        ),
        other => other.to_string(),
    }
}

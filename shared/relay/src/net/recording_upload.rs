//! The session's recording arriving on the operator's attached connection
//! ([`crate::net::attach`]): each [`ClientMessage::RecordingChunk`] is judged and stored by the
//! session's [`Recorder`] off the async threads (durable before it is acknowledged with
//! [`RelayMessage::RecordingStored`]), and what the audit log must hear (the first byte, each
//! closed segment, the completion) is written in the same turn.
//!
//! Pieces are taken only for a session whose certificate records it (mode other than off),
//! while it runs and for [`crate::net::live::GRACE`] after its end. Every message, a keepalive
//! included, counts as a sign of life for [`crate::net::recording_watch`].
//!
//! [`ClientMessage::RecordingChunk`]: sightline_core::relay_proto::ClientMessage::RecordingChunk

use crate::context::{InternalError, Relay};
use crate::net::live::LiveSession;
use crate::net::replies;
use crate::store::recordings::writer::{ChunkError, Recorder, Report};
use crate::store::recordings::{self, Segment};
use sightline_core::cert::RecordingMode;
use sightline_core::relay_proto::{RelayMessage, MAX_RECORDING_CHUNK};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::MutexGuard;

/// One uploaded piece.
#[derive(Debug)]
pub struct Piece {
    /// Where it starts in the file.
    pub offset: u64,
    /// Ciphertext (empty: a keepalive).
    pub data: Vec<u8>,
    /// Nothing follows.
    pub last: bool,
}

/// The recorder of `live`, taken up from its row and file if not yet open.
async fn recorder<'a>(
    relay: &Relay,
    live: &'a LiveSession,
    session: &str,
) -> Result<MutexGuard<'a, Option<Recorder>>, InternalError> {
    let mut guard = live.recorder.lock().await;
    if guard.is_none() {
        let id = session.to_string();
        let (row, data) = relay
            .with_db(move |db| Ok((recordings::find(db, &id)?, db.data_dir())))
            .await?;
        let id = session.to_string();
        let opened = tokio::task::spawn_blocking(move || {
            Recorder::open(&data, &id, row.as_ref(), Instant::now())
        })
        .await
        .map_err(|_| InternalError::Worker)?
        .map_err(|e| InternalError::Db(e.into()))?;
        *guard = Some(opened);
    }
    Ok(guard)
}

/// Bytes of the session's recording stored so far, for `Attached` (0 for a session not
/// recorded).
pub async fn stored(
    relay: &Relay,
    live: &LiveSession,
    session: &str,
) -> Result<u64, InternalError> {
    if live.recording.mode == RecordingMode::Off {
        return Ok(0);
    }
    Ok(recorder(relay, live, session)
        .await?
        .as_ref()
        .map_or(0, Recorder::stored))
}

/// Handles one piece: the reply, or the refusal to close the connection with.
pub async fn piece(
    relay: &Relay,
    live: &Arc<LiveSession>,
    session: &str,
    piece: Piece,
) -> Result<RelayMessage, RelayMessage> {
    if live.recording.mode == RecordingMode::Off {
        return Err(replies::bad_request(
            "this session is not recorded (the operator's certificate says recording is off); \
             the relay takes no recording for it",
        ));
    }
    let now = Instant::now();
    if !live.takes_uploads(now) {
        return Err(replies::bad_request(
            "the session ended over a minute ago; its recording takes no more pieces",
        ));
    }
    if piece.data.len() > MAX_RECORDING_CHUNK {
        return Err(replies::bad_request(&format!(
            "a recording piece holds at most {MAX_RECORDING_CHUNK} bytes"
        )));
    }
    live.saw_upload(now);
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(%session, error = %e, "cannot store the recording");
        replies::internal()
    };
    let mut guard = recorder(relay, live, session)
        .await
        .map_err(|e| internal(&e))?;
    let Some(mut rec) = guard.take() else {
        return Err(replies::internal());
    };
    let Piece { offset, data, last } = piece;
    let (rec, result) = tokio::task::spawn_blocking(move || {
        let r = rec.chunk(offset, &data, last, now);
        (rec, r)
    })
    .await
    .map_err(|e| internal(&e))?;
    let report = match result {
        Ok(report) => report,
        Err(ChunkError::Refused(why)) => {
            *guard = Some(rec);
            return Err(replies::bad_request(&why.to_string()));
        }
        // The recorder is dropped: taken up from disk next time, nothing unaccounted.
        Err(ChunkError::File(e)) => return Err(internal(&e)),
    };
    if let Err(e) = record(relay, live, session, &report).await {
        return Err(internal(&e));
    }
    *guard = Some(rec);
    Ok(RelayMessage::RecordingStored {
        stored: report.stored,
    })
}

/// When the open segment must be closed, if it holds anything.
pub async fn segment_deadline(live: &LiveSession) -> Option<Instant> {
    live.recorder
        .lock()
        .await
        .as_ref()
        .and_then(Recorder::segment_deadline)
}

/// Closes the open segment if it is due (or at once: `now_anyway`, the uploader left) and
/// writes its `recording.chunk` entry.
pub async fn close_segment(relay: &Relay, live: &LiveSession, session: &str, now_anyway: bool) {
    let mut guard = live.recorder.lock().await;
    let Some(rec) = guard.as_mut() else {
        return;
    };
    let segment = if now_anyway {
        rec.close_segment()
    } else {
        rec.close_due(Instant::now())
    };
    let Some(segment) = segment else {
        return;
    };
    let report = Report {
        segment: Some(segment),
        ..Report::default()
    };
    if let Err(e) = record(relay, live, session, &report).await {
        tracing::error!(%session, error = %e, "cannot record a recording segment");
        // Taken up from disk next time: the segment's bytes open the next one again.
        *guard = None;
    }
}

/// Writes what `report` says the audit log must hear, in order.
async fn record(
    relay: &Relay,
    live: &LiveSession,
    session: &str,
    report: &Report,
) -> Result<(), InternalError> {
    if !report.started && report.segment.is_none() && report.completed.is_none() {
        return Ok(());
    }
    let (id, operator) = (session.to_string(), live.operator.clone());
    let (started, segment, completed): (bool, Option<Segment>, _) = (
        report.started,
        report.segment.clone(),
        report.completed.clone(),
    );
    relay
        .with_db(move |db| {
            let now = sightline_net::clock::now_unix();
            if started {
                recordings::started(db, &id, &operator, now)?;
            }
            if let Some(s) = &segment {
                recordings::segment(db, &id, &operator, s, now)?;
            }
            if let Some((size, sha)) = &completed {
                recordings::completed(db, &id, &operator, *size, sha, now)?;
            }
            Ok(())
        })
        .await?;
    relay.audit_recorded();
    if let Some((size, sha)) = &report.completed {
        tracing::info!(%session, operator = %live.operator, bytes = size, sha256 = %sha, "recording complete");
    }
    Ok(())
}

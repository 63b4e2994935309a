//! The recording's ciphertext to the relay, over a connection attached to the session as its
//! operator ([`sightline_net::relay_client::Uplink`]). Bytes are kept until the relay says it
//! stored them; after a broken connection the upload attaches again and goes on from what the
//! relay holds, so no piece is lost or written twice. While nothing new comes (a still
//! screen), an empty piece every [`RECORDING_KEEPALIVE_SECS`] tells the relay the recording
//! goes on: a `required` recording that falls silent ends the session there.

use super::writer::Piece;
use crate::uplink::{attach, Target};
use sightline_core::relay_proto::{
    MAX_RECORDING_CHUNK, RECORDING_KEEPALIVE_SECS, RECORDING_STALL_SECS,
};
use sightline_net::relay_client::Uplink;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most ciphertext held for a relay that does not take it (about 25 minutes of 1080p video);
/// beyond it the recording has failed.
const MAX_HELD: usize = 512 * 1024 * 1024;
/// Pause between two attempts to attach.
const RETRY: Duration = Duration::from_secs(1);

/// The upload's state.
struct Upload {
    target: Target,
    uplink: Option<Uplink>,
    /// Ciphertext not yet stored by the relay, starting at file offset `base`.
    held: Vec<u8>,
    base: u64,
    /// The writer is done: after `held`, the file is complete.
    complete: bool,
    /// When the relay last took something (or was told the recording goes on).
    last_delivery: Instant,
    next_attach: Instant,
}

/// Hands what comes on `cipher` to the relay until the recording is complete there; says why
/// on `failed` if it cannot be.
pub(super) async fn run(
    target: Target,
    mut cipher: mpsc::UnboundedReceiver<Piece>,
    failed: oneshot::Sender<String>,
) {
    let mut up = Upload {
        target,
        uplink: None,
        held: Vec::new(),
        base: 0,
        complete: false,
        last_delivery: Instant::now(),
        next_attach: Instant::now(),
    };
    let keepalive = Duration::from_secs(RECORDING_KEEPALIVE_SECS);
    loop {
        if !up.complete {
            let piece = tokio::time::timeout(keepalive, cipher.recv()).await;
            match piece {
                Ok(Some(Piece::Bytes(b))) => up.held.extend_from_slice(&b),
                Ok(Some(Piece::Last(b))) => {
                    up.held.extend_from_slice(&b);
                    up.complete = true;
                }
                Ok(Some(Piece::Failed(why))) => return fail(failed, why),
                Ok(None) => return fail(failed, "the recording stopped unfinished".into()),
                Err(_) => {} // nothing new: a keepalive is due
            }
            // Take everything already waiting, so one delivery carries it.
            while let Ok(piece) = cipher.try_recv() {
                match piece {
                    Piece::Bytes(b) => up.held.extend_from_slice(&b),
                    Piece::Last(b) => {
                        up.held.extend_from_slice(&b);
                        up.complete = true;
                    }
                    Piece::Failed(why) => return fail(failed, why),
                }
            }
        } else {
            tokio::time::sleep(RETRY).await;
        }
        if up.held.len() > MAX_HELD {
            return fail(failed, "the relay does not take the recording".into());
        }
        match up.deliver().await {
            Ok(true) => {
                tracing::info!(
                    bytes = up.base,
                    "the session's recording is complete on the relay"
                );
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "handing the recording to the relay failed; will try again");
                up.uplink = None;
                if up.last_delivery.elapsed() > Duration::from_secs(RECORDING_STALL_SECS) {
                    return fail(failed, format!("the recording cannot reach the relay: {e}"));
                }
            }
        }
    }
}

fn fail(failed: oneshot::Sender<String>, why: String) {
    tracing::error!(%why, "the session's recording failed");
    let _ = failed.send(why);
}

impl Upload {
    /// Sends what is held (or a keepalive); `Ok(true)` once the complete file is stored.
    async fn deliver(&mut self) -> Result<bool, String> {
        if self.uplink.is_none() {
            if Instant::now() < self.next_attach {
                return Err("waiting to attach again".into());
            }
            self.next_attach = Instant::now() + RETRY;
            let u = attach(&self.target).await.map_err(|e| e.to_string())?;
            self.stored(u.recording_stored)?;
            self.uplink = Some(u);
        }
        loop {
            let Some(u) = self.uplink.as_mut() else {
                return Err("not attached".into());
            };
            let take = self.held.len().min(MAX_RECORDING_CHUNK);
            let last = self.complete && take == self.held.len();
            let stored = u
                .send_recording(self.base, &self.held[..take], last)
                .await
                .map_err(|e| e.to_string())?;
            self.last_delivery = Instant::now();
            self.stored(stored)?;
            if last {
                return Ok(true);
            }
            if self.held.is_empty() {
                return Ok(false);
            }
        }
    }

    /// The relay holds `stored` bytes: what it holds is no longer kept here.
    fn stored(&mut self, stored: u64) -> Result<(), String> {
        let (held, base) = acknowledged(std::mem::take(&mut self.held), self.base, stored)?;
        self.held = held;
        self.base = base;
        Ok(())
    }
}

/// What is still held after the relay says it holds `stored` bytes, `held` starting at file
/// offset `base`; an error when the relay's count cannot be right (it lost bytes it stored, or
/// claims bytes never sent).
fn acknowledged(mut held: Vec<u8>, base: u64, stored: u64) -> Result<(Vec<u8>, u64), String> {
    if stored < base {
        return Err(format!(
            "the relay holds {stored} bytes of the recording, fewer than the {base} it stored before"
        ));
    }
    let done = usize::try_from(stored - base)
        .ok()
        .filter(|d| *d <= held.len())
        .ok_or_else(|| "the relay claims more of the recording than was sent".to_string())?;
    held.drain(..done);
    Ok((held, stored))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::acknowledged;

    #[test]
    fn what_the_relay_stored_is_let_go_and_nothing_else() {
        assert_eq!(
            acknowledged(vec![1, 2, 3, 4], 10, 12).unwrap(),
            (vec![3, 4], 12)
        );
        // A resend the relay already had: nothing new acknowledged.
        assert_eq!(acknowledged(vec![3, 4], 12, 12).unwrap(), (vec![3, 4], 12));
        assert_eq!(acknowledged(vec![3, 4], 12, 14).unwrap(), (vec![], 14));
        // A relay that lost what it stored, or claims what was never sent: the upload fails.
        assert!(acknowledged(vec![3, 4], 12, 11).is_err());
        assert!(acknowledged(vec![3, 4], 12, 15).is_err());
    }
}

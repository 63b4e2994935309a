//! The agent's proof of what video it sent ([`sightline_core::media_proof`]): every message
//! the screen share puts on its way to the viewer passes through here, where the picture
//! formats and packets are hashed in the order they go out, and a checkpoint signed with the
//! session's media key follows every few seconds of video and once more at the end. A
//! recording of the session can then be proven to be exactly what the agent sent.
//!
//! A share (and each restart of it after a pause or a reconnection) gets its own forwarding
//! task; they share one signer behind an async lock that is held while a message is hashed and
//! sent, so the hash follows the order on the wire.

use sightline_core::media_proof::{CheckpointSigner, CHECKPOINT_EVERY_SECS};
use sightline_core::messages::Message;
use sightline_core::relay_proto::SessionId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// How long the end of a session waits for the share's last packets before the final
/// checkpoint.
const FINISH_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct State {
    signer: CheckpointSigner,
    last_checkpoint: Instant,
    /// No more checkpoints: the final one was sent (or the session is gone).
    finished: bool,
}

/// The session's media proof; cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaProof {
    state: Arc<Mutex<State>>,
    forwarders: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    public_key: [u8; 32],
}

impl MediaProof {
    /// A fresh media key for `session_id`.
    pub fn new(session_id: SessionId) -> Self {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        let signer = CheckpointSigner::new(session_id, seed);
        let public_key = signer.public_key();
        Self {
            state: Arc::new(Mutex::new(State {
                signer,
                last_checkpoint: Instant::now(),
                finished: false,
            })),
            forwarders: Arc::default(),
            public_key,
        }
    }

    /// The media key's public half, for the signed session event that announces it.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// A sender for a share's messages that hashes them on their way to `to_peer`.
    pub fn tap(&self, to_peer: &mpsc::Sender<Message>) -> mpsc::Sender<Message> {
        // Small: the share's backpressure is the session's, as if it sent directly.
        let (tx, mut rx) = mpsc::channel::<Message>(2);
        let (state, to_peer) = (self.state.clone(), to_peer.clone());
        let task = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let mut s = state.lock().await;
                let video = matches!(
                    msg,
                    Message::VideoPacket { .. } | Message::VideoConfig { .. }
                );
                if s.finished {
                    // After the final checkpoint nothing more is sent.
                    continue;
                }
                s.signer.sent(&msg);
                if to_peer.send(msg).await.is_err() {
                    return;
                }
                let due = s.last_checkpoint.elapsed() >= Duration::from_secs(CHECKPOINT_EVERY_SECS);
                if video && due && checkpoint(&mut s, &to_peer, false).await.is_err() {
                    return;
                }
            }
        });
        let mut forwarders = self.forwarders.lock().unwrap_or_else(|p| p.into_inner());
        forwarders.retain(|t| !t.is_finished());
        forwarders.push(task);
        tx
    }

    /// The session's end, after the share stopped: waits briefly for its last packets, then
    /// sends the final checkpoint on `to_peer`.
    pub async fn finish(&self, to_peer: &mpsc::Sender<Message>) {
        let tasks: Vec<_> = {
            let mut f = self.forwarders.lock().unwrap_or_else(|p| p.into_inner());
            f.drain(..).collect()
        };
        for task in tasks {
            let _ = tokio::time::timeout(FINISH_WAIT, task).await;
        }
        let mut s = self.state.lock().await;
        if !s.finished {
            let _ = checkpoint(&mut s, to_peer, true).await;
        }
    }
}

/// Signs and sends a checkpoint (`last`: the final one, after which nothing is sent).
async fn checkpoint(s: &mut State, to_peer: &mpsc::Sender<Message>, last: bool) -> Result<(), ()> {
    s.last_checkpoint = Instant::now();
    s.finished = last;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    match s.signer.checkpoint(now_us, last) {
        Ok(cp) => to_peer
            .send(Message::MediaCheckpoint(cp))
            .await
            .map_err(drop),
        Err(e) => {
            tracing::warn!(error = %e, "cannot sign a media checkpoint");
            Ok(())
        }
    }
}

//! The container writer on a thread of its own: takes what the dispatcher records, encrypts
//! it ([`sightline_recording::Writer`]) and passes the ciphertext on to the upload as it comes
//! out. When the session is over (the dispatcher's sender is gone) it finishes the container
//! (end record, index, the age stream's last chunk).
//!
//! age holds back the plaintext of a 64 KiB chunk until the chunk is full: on a quiet screen
//! that can be minutes of pointer moves, input and events, which a viewer that crashes (or is
//! killed) would take with it. So what has waited [`QUIET_FLUSH`] is padded out to the end of
//! its chunk and sent: at most one chunk of padding per [`QUIET_FLUSH`] of a quiet session,
//! none while video flows (chunks fill in well under a second).

use super::Plan;
use sightline_core::messages::{InputEvent, Message};
use sightline_recording::{Meta, Record, Writer};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many recorded items may wait for the writer; the dispatcher waits beyond that (the
/// writer is much faster than any link, so this only absorbs bursts).
const QUEUE: usize = 256;
/// The longest recorded data waits in age's buffer before it is padded out and sent.
const QUIET_FLUSH: Duration = Duration::from_secs(5);

/// What the dispatcher records, with the time since the recording started (µs).
#[derive(Debug)]
pub enum Item {
    /// A message from the agent.
    Agent(u64, Message),
    /// The operator's input.
    Input(u64, InputEvent),
    /// How the session ended.
    End(String),
    /// Time passes (once a second): data kept back too long is flushed.
    Tick,
}

/// Ciphertext for the relay.
#[derive(Debug)]
pub enum Piece {
    /// The next bytes of the recording file.
    Bytes(Vec<u8>),
    /// The last bytes: the file is complete after them.
    Last(Vec<u8>),
    /// The writer failed; the recording cannot be completed.
    Failed(String),
}

/// A started writer: where items go in and ciphertext comes out, and its thread.
pub(super) struct Started {
    pub items: mpsc::Sender<Item>,
    pub cipher: mpsc::UnboundedReceiver<Piece>,
    pub task: JoinHandle<()>,
}

/// Starts the writer thread.
pub(super) fn spawn(plan: &Plan, meta: &Meta) -> Result<Started, String> {
    let writer = Writer::new(&plan.recipients, meta)
        .map_err(|e| format!("cannot start the recording: {e}"))?;
    let (items, rx) = mpsc::channel(QUEUE);
    let (cipher_tx, cipher) = mpsc::unbounded_channel();
    let task = tokio::task::spawn_blocking(move || run(writer, rx, &cipher_tx));
    // The ticker holds no lasting sender, so the writer still ends when the dispatcher's go.
    let ticker = items.downgrade();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let Some(tx) = ticker.upgrade() else { return };
            if tx.send(Item::Tick).await.is_err() {
                return;
            }
        }
    });
    Ok(Started {
        items,
        cipher,
        task,
    })
}

fn run(mut writer: Writer, mut items: mpsc::Receiver<Item>, out: &mpsc::UnboundedSender<Piece>) {
    let mut reason = String::from("the viewer stopped");
    // Since when recorded data waits in age's buffer (none: everything is out).
    let mut waiting: Option<Instant> = None;
    while let Some(item) = items.blocking_recv() {
        let pushed = match &item {
            Item::Agent(at, msg) => writer.push(*at, Record::Agent(msg)),
            Item::Input(at, ev) => writer.push(*at, Record::Input(ev)),
            Item::End(why) => {
                reason.clone_from(why);
                Ok(())
            }
            Item::Tick => match waiting {
                Some(since) if since.elapsed() >= QUIET_FLUSH => writer.pad_to_chunk(),
                _ => Ok(()),
            },
        };
        if let Err(e) = pushed {
            let _ = out.send(Piece::Failed(format!("cannot write the recording: {e}")));
            return;
        }
        let recorded = matches!(item, Item::Agent(..) | Item::Input(..));
        let bytes = writer.take_ciphertext();
        if !bytes.is_empty() {
            // A chunk went out. After a record, the record's tail starts the next chunk (age
            // sends a chunk once a byte follows it), and waits from now; after padding, only
            // padding does.
            waiting = recorded.then(Instant::now);
            if out.send(Piece::Bytes(bytes)).is_err() {
                return;
            }
        } else if recorded && waiting.is_none() {
            waiting = Some(Instant::now());
        }
    }
    let _ = out.send(match writer.finish(&reason) {
        Ok(rest) => Piece::Last(rest),
        Err(e) => Piece::Failed(format!("cannot finish the recording: {e}")),
    });
}

//! The container writer on a thread of its own: takes what the dispatcher records, encrypts
//! it ([`sightline_recording::Writer`]) and passes the ciphertext on to the upload as it comes
//! out. When the session is over (the dispatcher's sender is gone) it finishes the container
//! (end record, index, the age stream's last chunk).

use super::Plan;
use sightline_core::messages::{InputEvent, Message};
use sightline_recording::{Meta, Record, Writer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many recorded items may wait for the writer; the dispatcher waits beyond that (the
/// writer is much faster than any link, so this only absorbs bursts).
const QUEUE: usize = 256;

/// What the dispatcher records, with the time since the recording started (µs).
#[derive(Debug)]
pub enum Item {
    /// A message from the agent.
    Agent(u64, Message),
    /// The operator's input.
    Input(u64, InputEvent),
    /// How the session ended.
    End(String),
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
    Ok(Started {
        items,
        cipher,
        task,
    })
}

fn run(mut writer: Writer, mut items: mpsc::Receiver<Item>, out: &mpsc::UnboundedSender<Piece>) {
    let mut reason = String::from("the viewer stopped");
    while let Some(item) = items.blocking_recv() {
        let pushed = match &item {
            Item::Agent(at, msg) => writer.push(*at, Record::Agent(msg)),
            Item::Input(at, ev) => writer.push(*at, Record::Input(ev)),
            Item::End(why) => {
                reason.clone_from(why);
                Ok(())
            }
        };
        if let Err(e) = pushed {
            let _ = out.send(Piece::Failed(format!("cannot write the recording: {e}")));
            return;
        }
        let bytes = writer.take_ciphertext();
        if !bytes.is_empty() && out.send(Piece::Bytes(bytes)).is_err() {
            return;
        }
    }
    let _ = out.send(match writer.finish(&reason) {
        Ok(rest) => Piece::Last(rest),
        Err(e) => Piece::Failed(format!("cannot finish the recording: {e}")),
    });
}

//! Operator input on the customer's machine: an injector thread fed by a bounded queue, used
//! only while control is granted. Ending control (or the session, however abruptly) drops the
//! injector, which releases every key and button it holds.

use crate::capture::Monitor;
use crate::input::Injector;
use sightline_core::messages::InputEvent;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// A running injector. [`Control::stop`] ends it and waits until every held key and button
/// is released; merely dropping it ends the thread too, without waiting (use `stop` before the
/// process exits, or the release may not happen).
#[derive(Debug)]
pub struct Control {
    events: SyncSender<InputEvent>,
    thread: JoinHandle<()>,
}

/// Errors starting input injection.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The injector could not be created.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// The thread could not be started.
    #[error("cannot start the input thread: {0}")]
    Thread(std::io::Error),
}

impl Control {
    /// Starts injecting on `monitor`.
    pub fn start(monitor: Monitor) -> Result<Self, ControlError> {
        let (events, rx) = sync_channel::<InputEvent>(256);
        let (ready_tx, ready_rx) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                // enigo's connection stays on this thread.
                let mut injector = match Injector::new(&monitor) {
                    Ok(i) => {
                        let _ = ready_tx.send(Ok(()));
                        i
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(ev) = rx.recv() {
                    if let Err(e) = injector.apply(&ev) {
                        tracing::warn!(error = %e, "input event dropped");
                    }
                }
                if let Err(e) = injector.release_all() {
                    tracing::warn!(error = %e, "releasing held keys failed");
                }
            })
            .map_err(ControlError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { events, thread }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ControlError::Thread(std::io::Error::other(
                "input thread ended",
            ))),
        }
    }

    /// Ends injection and waits until held keys and buttons have been released. Blocks briefly:
    /// call it from a blocking context.
    pub fn stop(self) {
        drop(self.events);
        if self.thread.join().is_err() {
            tracing::warn!("the input thread panicked");
        }
    }

    /// Queues an event; drops it (with a warning) if the injector is far behind.
    pub fn inject(&self, ev: InputEvent) {
        match self.events.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!("input queue full; event dropped"),
            Err(TrySendError::Disconnected(_)) => tracing::warn!("input thread has ended"),
        }
    }
}

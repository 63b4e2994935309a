//! Plays an input script (`--send-input FILE`, see [`crate::script`]) against a running
//! session client, for the window and the headless session alike: asks the customer for
//! control first, starts only after their yes, stops at a refusal or at the session's end.
//! The steps run on their own thread, so waiting and sleeping never hold up the UI or the
//! event loop; the owner feeds the client's events in with [`Player::observe`].

use crate::client::{ClientCommand, ClientEvent};
use crate::script::Step;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::Sender;

/// An input script waiting for its session, then playing.
#[derive(Debug)]
pub struct Player {
    /// The steps, until the session is connected and they start.
    steps: Option<Vec<Step>>,
    decoded: Arc<AtomicU64>,
    gate: Arc<ControlGate>,
}

impl Player {
    /// A player for `steps`; it starts when [`Player::observe`] sees the session connect.
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: Some(steps),
            decoded: Arc::default(),
            gate: Arc::default(),
        }
    }

    /// Takes in one of the client's events; `commands` is the client's command queue, used
    /// when the session connects and the script starts.
    pub fn observe(
        &mut self,
        event: &ClientEvent,
        commands: impl FnOnce() -> Sender<ClientCommand>,
    ) {
        match event {
            ClientEvent::Connected { .. } => self.connected(commands()),
            ClientEvent::FrameDecoded { .. } => self.frame_decoded(),
            ClientEvent::Control { granted, .. } => self.control(*granted),
            _ => {}
        }
    }

    /// Whether the script has not started yet.
    pub fn is_waiting(&self) -> bool {
        self.steps.is_some()
    }

    /// The session is connected: the script starts (once) on its own thread.
    pub fn connected(&mut self, commands: Sender<ClientCommand>) {
        if let Some(steps) = self.steps.take() {
            spawn_script(
                script_steps(steps),
                commands,
                self.decoded.clone(),
                self.gate.clone(),
            );
        }
    }

    /// A picture was decoded (for `wait-frames`).
    pub fn frame_decoded(&self) {
        self.decoded.fetch_add(1, Ordering::SeqCst);
    }

    /// The agent's word on control.
    pub fn control(&self, granted: bool) {
        self.gate.answer(granted);
    }
}

/// The steps played: ask for control first, so the script starts only once it is granted.
fn script_steps(steps: Vec<Step>) -> Vec<Step> {
    std::iter::once(Step::RequestControl).chain(steps).collect()
}

/// The customer's answers about control, shared with the input script's thread.
#[derive(Debug, Default)]
struct ControlGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct GateState {
    /// How many `Control` answers have arrived.
    answers: u64,
    /// The latest one.
    granted: bool,
}

impl ControlGate {
    /// Records an answer from the agent.
    fn answer(&self, granted: bool) {
        let mut s = self.lock();
        s.answers += 1;
        s.granted = granted;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> GateState {
        *self.lock()
    }

    /// Waits for an answer after the first `seen`: whether it granted control; `None` once
    /// `gone` says nobody will answer (the session ended).
    fn wait_answer(&self, seen: u64, gone: impl Fn() -> bool) -> Option<bool> {
        let mut s = self.lock();
        loop {
            if s.answers > seen {
                return Some(s.granted);
            }
            if gone() {
                return None;
            }
            s = match self.changed.wait_timeout(s, Duration::from_millis(50)) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn spawn_script(
    steps: Vec<Step>,
    tx: tokio::sync::mpsc::Sender<ClientCommand>,
    decoded: Arc<AtomicU64>,
    gate: Arc<ControlGate>,
) {
    if let Err(e) = std::thread::Builder::new()
        .name("input-script".into())
        .spawn(move || play(steps, &tx, &decoded, &gate))
    {
        tracing::error!(error = %e, "cannot start the input script");
    }
}

/// Plays the steps on this thread until the end, the session's end or a refusal of control.
fn play(
    steps: Vec<Step>,
    tx: &tokio::sync::mpsc::Sender<ClientCommand>,
    decoded: &AtomicU64,
    gate: &ControlGate,
) {
    for step in steps {
        match step {
            Step::WaitFrames(n) => {
                while decoded.load(Ordering::SeqCst) < n {
                    if tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Step::Sleep(d) => std::thread::sleep(d),
            Step::Send(events) => {
                // While control is not granted the client drops these.
                for e in events {
                    if tx.blocking_send(ClientCommand::Input(e)).is_err() {
                        return;
                    }
                }
            }
            Step::RequestControl => {
                let before = gate.snapshot();
                if before.granted {
                    continue;
                }
                if tx.blocking_send(ClientCommand::RequestControl).is_err() {
                    return;
                }
                match gate.wait_answer(before.answers, || tx.is_closed()) {
                    Some(true) => {}
                    Some(false) => {
                        tracing::warn!(
                            "the customer did not allow control; the input script stops"
                        );
                        return;
                    }
                    None => return,
                }
            }
            Step::End => {
                let _ = tx.blocking_send(ClientCommand::End);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_asks_for_control_first() {
        assert_eq!(
            script_steps(vec![Step::End]),
            vec![Step::RequestControl, Step::End]
        );
    }

    fn spawn_play(
        steps: Vec<Step>,
    ) -> (
        tokio::sync::mpsc::Receiver<ClientCommand>,
        Arc<ControlGate>,
        std::thread::JoinHandle<()>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let gate = Arc::new(ControlGate::default());
        let g = gate.clone();
        let decoded = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn(move || play(script_steps(steps), &tx, &decoded, &g));
        (rx, gate, thread)
    }

    fn click() -> Step {
        Step::Send(vec![sightline_core::messages::InputEvent::PointerMove {
            x: 0.5,
            y: 0.5,
        }])
    }

    #[test]
    fn the_script_waits_for_the_grant() {
        let (mut rx, gate, thread) = spawn_play(vec![click(), Step::End]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            rx.try_recv().is_err(),
            "no input before the customer says yes"
        );
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::Input(_))));
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::End)));
        thread.join().expect("script thread");
    }

    #[test]
    fn a_refusal_stops_the_script() {
        let (mut rx, gate, thread) = spawn_play(vec![click(), Step::End]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        gate.answer(false);
        thread.join().expect("script thread");
        assert!(rx.blocking_recv().is_none(), "nothing after a refusal");
    }

    #[test]
    fn request_control_in_the_script_asks_again_after_a_revocation() {
        let steps = vec![
            click(),
            Step::Sleep(Duration::from_millis(100)),
            Step::RequestControl,
            click(),
            Step::End,
        ];
        let (mut rx, gate, thread) = spawn_play(steps);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::Input(_))));
        // Revoked during the sleep: the script asks again and waits.
        gate.answer(false);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        std::thread::sleep(Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "waits for the new answer");
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::Input(_))));
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::End)));
        thread.join().expect("script thread");
    }

    #[test]
    fn request_control_while_granted_sends_nothing() {
        let (mut rx, gate, thread) = spawn_play(vec![Step::RequestControl, Step::End]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        gate.answer(true);
        assert!(matches!(rx.blocking_recv(), Some(ClientCommand::End)));
        thread.join().expect("script thread");
    }

    #[test]
    fn the_script_stops_waiting_when_the_session_ends() {
        let (mut rx, _gate, thread) = spawn_play(vec![click()]);
        assert!(matches!(
            rx.blocking_recv(),
            Some(ClientCommand::RequestControl)
        ));
        drop(rx);
        thread.join().expect("script thread");
    }
}

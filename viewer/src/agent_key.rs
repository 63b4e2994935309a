//! The agent's key in a direct connection, checked right after the end-to-end handshake and
//! before anything of the session is read or shown: the known-hosts entry for the address,
//! the operator's flags, and on a first connection the operator's answer in the window
//! ([`ClientEvent::AgentKeyPrompt`], answered with [`ClientCommand::AgentKey`]). Every
//! outcome is reported ([`ClientEvent::AgentKey`]); a refusal comes back as the operator's
//! message, and the caller closes the session.

use crate::client::{ClientCommand, ClientEvent, Events};
use crate::direct::DirectAddress;
use crate::known_hosts::{self, AgentKeyPolicy, Decision, KeyRefusal};
use sightline_core::identity::Fingerprint;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the window's question waits for an answer. The agent ends a session that stays
/// silent for 40 s, so this leaves room to start it.
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a direct connection treats the agent's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentKeyCheck {
    /// What the flags say (`--accept-new-agent-key`, `--agent-key`).
    pub policy: AgentKeyPolicy,
    /// Whether a first connection asks the operator (the window) rather than being refused
    /// (`viewer session`).
    pub ask: bool,
}

/// The operator's answer to a first connection's question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAnswer {
    /// Connect this time; ask again next time.
    AcceptOnce,
    /// Connect, and store the key for the address.
    AcceptAndRemember,
    /// Do not connect.
    Cancel,
}

/// What became of the agent's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKeyStatus {
    /// The key stored for the address.
    Known,
    /// Accepted and stored now (`--accept-new-agent-key`, `--agent-key`, "Accept and
    /// remember").
    Remembered,
    /// Accepted for this connection only ("Accept once").
    AcceptedOnce,
    /// Refused: a first connection that nobody accepted (`viewer session` without a flag).
    Unknown,
    /// Refused by the operator in the window, or not answered in time.
    Declined,
    /// Refused: another key is stored for the address.
    Changed,
    /// Refused: not the key `--agent-key` named.
    Mismatch,
}

impl AgentKeyStatus {
    /// The name in the JSON `agent_key` event.
    pub fn name(self) -> &'static str {
        match self {
            AgentKeyStatus::Known => "known",
            AgentKeyStatus::Remembered => "remembered",
            AgentKeyStatus::AcceptedOnce => "accepted_once",
            AgentKeyStatus::Unknown => "unknown",
            AgentKeyStatus::Declined => "declined",
            AgentKeyStatus::Changed => "changed",
            AgentKeyStatus::Mismatch => "mismatch",
        }
    }

    /// Whether the session goes on.
    pub fn accepted(self) -> bool {
        matches!(
            self,
            AgentKeyStatus::Known | AgentKeyStatus::Remembered | AgentKeyStatus::AcceptedOnce
        )
    }
}

/// The outcome of the check, for the window, `viewer session` and their JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKeyReport {
    /// The agent's address, `host:port`.
    pub address: String,
    /// The key it presented.
    pub fingerprint: Fingerprint,
    /// What became of it.
    pub status: AgentKeyStatus,
    /// The key stored for the address before: the one that differs (`Changed`), or the one
    /// `--agent-key` replaced (`Remembered`).
    pub stored: Option<Fingerprint>,
    /// The key `--agent-key` named (`Mismatch`).
    pub expected: Option<Fingerprint>,
}

/// The key stored for `address` in the known hosts of `dir`, read before connecting: a loose
/// or damaged file refuses the connection before any byte is sent.
pub async fn stored_key(
    dir: &Path,
    address: &DirectAddress,
) -> Result<Option<Fingerprint>, String> {
    let (dir, address) = (dir.to_path_buf(), address.clone());
    tokio::task::spawn_blocking(move || known_hosts::load(&dir).map(|h| h.get(&address)))
        .await
        .map_err(|e| format!("known-hosts worker failed: {e}"))?
        .map_err(|e| format!("cannot check the agent's key: {e}"))
}

async fn remember(dir: &Path, address: &DirectAddress, key: Fingerprint) -> Result<(), String> {
    let (dir, address) = (dir.to_path_buf(), address.clone());
    tokio::task::spawn_blocking(move || known_hosts::remember(&dir, &address, key))
        .await
        .map_err(|e| format!("known-hosts worker failed: {e}"))?
        .map_err(|e| format!("cannot remember the agent's key: {e}"))
}

/// The agent's key check of one connection.
pub(crate) struct KeyCheck<'a> {
    /// The agent's address.
    pub address: &'a DirectAddress,
    /// The key stored for it when the connection started ([`stored_key`]).
    pub stored: Option<Fingerprint>,
    /// Flags and whether the operator can be asked.
    pub check: AgentKeyCheck,
    /// The viewer's data directory (the known hosts).
    pub dir: &'a Path,
    /// Where reports and the question go.
    pub events: &'a Events,
}

impl KeyCheck<'_> {
    /// Decides about `presented`, asking the operator through `commands` when the window can
    /// and must; stores the key when accepted for good. `Err` holds the operator's message.
    pub async fn run(
        self,
        presented: Fingerprint,
        commands: &mut mpsc::Receiver<ClientCommand>,
    ) -> Result<(), String> {
        let address = self.address.to_string();
        let report = |status, stored, expected| {
            self.events.emit(ClientEvent::AgentKey(AgentKeyReport {
                address: address.clone(),
                fingerprint: presented,
                status,
                stored,
                expected,
            }))
        };
        match known_hosts::decide(self.stored.as_ref(), &presented, self.check.policy) {
            Decision::Known => {
                report(AgentKeyStatus::Known, None, None);
                Ok(())
            }
            Decision::Remember { replaces } => {
                remember(self.dir, self.address, presented).await?;
                report(AgentKeyStatus::Remembered, replaces, None);
                Ok(())
            }
            Decision::Changed { stored } => {
                report(AgentKeyStatus::Changed, Some(stored), None);
                Err(KeyRefusal::Changed {
                    address: address.clone(),
                    presented,
                    stored,
                    file: self.file(),
                }
                .to_string())
            }
            Decision::Mismatch { expected } => {
                report(AgentKeyStatus::Mismatch, None, Some(expected));
                Err(KeyRefusal::Mismatch {
                    address: address.clone(),
                    presented,
                    expected,
                }
                .to_string())
            }
            Decision::Unknown if !self.check.ask => {
                report(AgentKeyStatus::Unknown, None, None);
                Err(KeyRefusal::Unknown {
                    address: address.clone(),
                    presented,
                }
                .to_string())
            }
            Decision::Unknown => {
                self.events.emit(ClientEvent::AgentKeyPrompt {
                    address: address.clone(),
                    fingerprint: presented,
                });
                match answer(commands).await {
                    Some(KeyAnswer::AcceptOnce) => {
                        report(AgentKeyStatus::AcceptedOnce, None, None);
                        Ok(())
                    }
                    Some(KeyAnswer::AcceptAndRemember) => {
                        remember(self.dir, self.address, presented).await?;
                        report(AgentKeyStatus::Remembered, None, None);
                        Ok(())
                    }
                    Some(KeyAnswer::Cancel) | None => {
                        report(AgentKeyStatus::Declined, None, None);
                        Err(KeyRefusal::Declined {
                            address: address.clone(),
                            presented,
                        }
                        .to_string())
                    }
                }
            }
        }
    }

    fn file(&self) -> PathBuf {
        known_hosts::path(self.dir)
    }
}

/// The operator's answer; `None` when the session was ended or nobody answered in
/// [`PROMPT_TIMEOUT`]. Input and control requests meanwhile are dropped (nothing is shown).
async fn answer(commands: &mut mpsc::Receiver<ClientCommand>) -> Option<KeyAnswer> {
    let deadline = tokio::time::Instant::now() + PROMPT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, commands.recv()).await {
            Ok(Some(ClientCommand::AgentKey(a))) => return Some(a),
            Ok(Some(ClientCommand::End) | None) | Err(_) => return None,
            Ok(Some(ClientCommand::Input(_) | ClientCommand::RequestControl)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use std::sync::Arc;

    const A: Fingerprint = Fingerprint([0xaa; 32]);
    const B: Fingerprint = Fingerprint([0xbb; 32]);

    fn addr() -> DirectAddress {
        "kiosk.lan".parse().unwrap()
    }

    /// Runs one check; returns its result, the events, and what is stored afterwards.
    fn run(
        dir: &Path,
        check: AgentKeyCheck,
        presented: Fingerprint,
        answers: Vec<ClientCommand>,
    ) -> (Result<(), String>, Vec<ClientEvent>, Option<Fingerprint>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = std_mpsc::channel();
        let events = Events {
            tx,
            notify: Arc::new(|| {}),
        };
        let (cmd_tx, mut cmd_rx) = mpsc::channel(8);
        for a in answers {
            cmd_tx.try_send(a).unwrap();
        }
        let result = rt.block_on(async {
            let stored = stored_key(dir, &addr()).await.unwrap();
            KeyCheck {
                address: &addr(),
                stored,
                check,
                dir,
                events: &events,
            }
            .run(presented, &mut cmd_rx)
            .await
        });
        let stored = known_hosts::load(dir).unwrap().get(&addr());
        (result, rx.try_iter().collect(), stored)
    }

    fn status(events: &[ClientEvent]) -> AgentKeyStatus {
        match events.last() {
            Some(ClientEvent::AgentKey(r)) => r.status,
            other => panic!("no report: {other:?}"),
        }
    }

    fn headless(policy: AgentKeyPolicy) -> AgentKeyCheck {
        AgentKeyCheck { policy, ask: false }
    }

    #[test]
    fn headless_first_use_needs_a_flag() {
        let dir = tempfile::tempdir().unwrap();
        let (r, ev, stored) = run(dir.path(), headless(AgentKeyPolicy::KnownOnly), A, vec![]);
        let message = r.expect_err("refused");
        assert!(message.contains("--accept-new-agent-key"), "{message}");
        assert_eq!(status(&ev), AgentKeyStatus::Unknown);
        assert_eq!(stored, None, "nothing stored");

        let (r, ev, stored) = run(dir.path(), headless(AgentKeyPolicy::AcceptNew), A, vec![]);
        assert_eq!(r, Ok(()));
        assert_eq!(status(&ev), AgentKeyStatus::Remembered);
        assert_eq!(stored, Some(A));

        // The same key again, without a flag: known.
        let (r, ev, _) = run(dir.path(), headless(AgentKeyPolicy::KnownOnly), A, vec![]);
        assert_eq!(r, Ok(()));
        assert_eq!(status(&ev), AgentKeyStatus::Known);
    }

    #[test]
    fn a_changed_key_is_refused_until_agent_key_names_it() {
        let dir = tempfile::tempdir().unwrap();
        known_hosts::remember(dir.path(), &addr(), A).unwrap();
        for policy in [AgentKeyPolicy::KnownOnly, AgentKeyPolicy::AcceptNew] {
            let (r, ev, stored) = run(dir.path(), headless(policy), B, vec![]);
            let message = r.expect_err("changed");
            assert!(
                message.contains(&A.to_string()) && message.contains(&B.to_string()),
                "{message}"
            );
            assert!(message.contains(known_hosts::FILE), "{message}");
            match ev.last() {
                Some(ClientEvent::AgentKey(r)) => {
                    assert_eq!(r.status, AgentKeyStatus::Changed);
                    assert_eq!(r.stored, Some(A));
                    assert_eq!(r.fingerprint, B);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(stored, Some(A), "never replaced silently");
        }
        // The window does not ask about a changed key either.
        let ask = AgentKeyCheck {
            policy: AgentKeyPolicy::KnownOnly,
            ask: true,
        };
        let (r, ev, _) = run(dir.path(), ask, B, vec![]);
        assert!(r.is_err());
        assert!(!ev
            .iter()
            .any(|e| matches!(e, ClientEvent::AgentKeyPrompt { .. })));
        // --agent-key with another key still refuses; with the new one, it replaces the entry.
        let (r, ev, _) = run(dir.path(), headless(AgentKeyPolicy::Expect(A)), B, vec![]);
        assert!(r.is_err());
        assert_eq!(status(&ev), AgentKeyStatus::Mismatch);
        let (r, ev, stored) = run(dir.path(), headless(AgentKeyPolicy::Expect(B)), B, vec![]);
        assert_eq!(r, Ok(()));
        match ev.last() {
            Some(ClientEvent::AgentKey(r)) => {
                assert_eq!(r.status, AgentKeyStatus::Remembered);
                assert_eq!(r.stored, Some(A), "says what it replaced");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(stored, Some(B));
    }

    #[test]
    fn the_window_asks_on_first_use() {
        let ask = AgentKeyCheck {
            policy: AgentKeyPolicy::KnownOnly,
            ask: true,
        };
        let answer = |a| vec![ClientCommand::RequestControl, ClientCommand::AgentKey(a)];
        let dir = tempfile::tempdir().unwrap();
        let (r, ev, stored) = run(dir.path(), ask, A, answer(KeyAnswer::Cancel));
        assert!(r.is_err());
        match ev.first() {
            Some(ClientEvent::AgentKeyPrompt {
                address,
                fingerprint,
            }) => {
                assert_eq!(address, "kiosk.lan:7615");
                assert_eq!(*fingerprint, A);
            }
            other => panic!("no question: {other:?}"),
        }
        assert_eq!(status(&ev), AgentKeyStatus::Declined);
        assert_eq!(stored, None);
        // Ending the session answers no too.
        let (r, _, _) = run(dir.path(), ask, A, vec![ClientCommand::End]);
        assert!(r.is_err());

        let (r, ev, stored) = run(dir.path(), ask, A, answer(KeyAnswer::AcceptOnce));
        assert_eq!(r, Ok(()));
        assert_eq!(status(&ev), AgentKeyStatus::AcceptedOnce);
        assert_eq!(stored, None, "once is not remembered");

        let (r, ev, stored) = run(dir.path(), ask, A, answer(KeyAnswer::AcceptAndRemember));
        assert_eq!(r, Ok(()));
        assert_eq!(status(&ev), AgentKeyStatus::Remembered);
        assert_eq!(stored, Some(A));
        // Known now: no question.
        let (r, ev, _) = run(dir.path(), ask, A, vec![]);
        assert_eq!(r, Ok(()));
        assert_eq!(ev.len(), 1);
        assert_eq!(status(&ev), AgentKeyStatus::Known);
    }
}

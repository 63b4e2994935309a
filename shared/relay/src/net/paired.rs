//! A paired session from its pairing to its end: both sides are told they are paired (each
//! with a fresh resume token, [`crate::net::tickets`]), their end-to-end traffic is forwarded
//! unread, and when either connection ends or fails the other is closed too and the session is
//! parked for [`crate::net::tickets::RESUME_WINDOW`]. When both sides come back with their tokens
//! ([`crate::net::resume`]) they are paired again, with new tokens, and the ends resume their
//! end-to-end session themselves. After the window the session is over; so it is at once when
//! the relay stops it ([`Stop`]): the operator's certificate is revoked, or the recording the
//! help desk requires goes silent while the session is forwarded
//! ([`crate::net::recording_watch`]). Then both connections close, the record ends abnormally
//! with the reason, the operator's attached connection is told, and so is a side that tries to
//! resume.
//!
//! The relay cannot read the explicit close that ends a session normally, so every session is
//! parked when its connections end; one that ended normally is simply never resumed. A parked
//! session keeps the two connection slots of its last connections, so parked sessions count
//! against `max_connections` like running ones.

use crate::accounts::login::LoggedIn;
use crate::context::Relay;
use crate::net::active::Registered;
use crate::net::admission::Slot;
use crate::net::conn::Conn;
use crate::net::forward::{self, Ended};
use crate::net::live::LiveSession;
use crate::net::recording_watch;
use crate::net::replies;
use crate::net::stop::Stop;
use crate::net::tickets::{Arrival, Side, Tokens};
use crate::store::{recordings, sessions};
use rand_core::OsRng;
use sightline_core::relay_proto::{RelayMessage, SessionId};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What one pairing came to.
enum Interruption {
    /// A connection ended or failed (or a side came back while the other still seemed to be
    /// there: `early`).
    Broken {
        ended_by: String,
        early: Option<Box<Arrival<Conn>>>,
    },
    /// The relay ends the session.
    Stopped(Stop),
}

/// Why a session is over.
#[derive(Debug, Clone, Copy)]
enum Over {
    /// It was not resumed (the window passed).
    NotResumed(&'static str),
    /// The relay ended it.
    Stopped(Stop),
}

impl Over {
    /// How the log names the end.
    fn ended_by(self) -> &'static str {
        match self {
            Over::NotResumed(why) => why,
            Over::Stopped(stop) => stop.ended_by(),
        }
    }
}

/// The sides that came back while the session was parked.
#[derive(Default)]
struct Back {
    operator: Option<Conn>,
    agent: Option<Conn>,
}

impl Back {
    fn place(&mut self, arrival: Arrival<Conn>) {
        // A newer connection of the same side replaces the older one, which closes.
        match arrival.side {
            Side::Operator => self.operator = Some(arrival.conn),
            Side::Agent => self.agent = Some(arrival.conn),
        }
    }

    fn both(&mut self) -> Option<(Conn, Conn)> {
        if self.operator.is_some() && self.agent.is_some() {
            return self.operator.take().zip(self.agent.take());
        }
        None
    }

    async fn close_all(self, answer: &RelayMessage) {
        for conn in [self.operator, self.agent].into_iter().flatten() {
            conn.close_with(answer).await;
        }
    }
}

/// One session's state across its pairings.
struct Pairing<'a> {
    relay: &'a Relay,
    session_id: SessionId,
    who: &'a LoggedIn,
    session: String,
    arrivals: mpsc::Receiver<Arrival<Conn>>,
    handoff: mpsc::Sender<Arrival<Conn>>,
    /// Fires when the relay ends the session from outside (a revocation).
    stop: oneshot::Receiver<Stop>,
    /// The session as its attached connections see it (the recording's signs of life).
    live: Arc<LiveSession>,
    /// The connection slots of the last pairing, kept while the session is parked.
    slots: Vec<Slot>,
    bytes: (u64, u64),
}

/// Runs a session paired between `operator` and `agent` to its end.
pub async fn run(
    relay: &std::sync::Arc<Relay>,
    operator: Conn,
    agent: Conn,
    session_id: SessionId,
    who: &LoggedIn,
) {
    let (handoff, arrivals) = mpsc::channel(4);
    let (registered, stop): (Registered<'_>, _) = relay.active.register(&who.name, who.serial);
    let live = Arc::new(LiveSession::new(
        who.name.clone(),
        who.serial,
        who.authority.clone(),
        agent.identity.clone(),
        who.recording.clone(),
    ));
    let mut p = Pairing {
        relay,
        session_id,
        who,
        session: hex::encode(session_id),
        arrivals,
        handoff,
        stop,
        live,
        slots: Vec::new(),
        bytes: (0, 0),
    };
    if !p.record_opened(Opening::of(&operator, &agent)).await {
        agent.close_with(&replies::internal()).await;
        return operator.close_with(&replies::internal()).await;
    }
    relay.live.insert(session_id, p.live.clone());
    let started = Instant::now();
    let mut conns = (operator, agent);
    let mut resumed = 0u32;
    let mut last_break;
    let (over, waiting) = loop {
        let back = match p.pair_and_forward(conns).await {
            Interruption::Stopped(stop) => {
                last_break = Break::now(stop.reason(), true);
                break (Over::Stopped(stop), Back::default());
            }
            Interruption::Broken { ended_by, early } => {
                tracing::info!(operator = %who.name, session = %p.session, %ended_by,
                    window_secs = relay.tickets.window().as_secs(), "session interrupted; parked until both sides come back");
                last_break = Break::of(&ended_by);
                let mut back = Back::default();
                if let Some(early) = early {
                    back.place(*early);
                }
                back
            }
        };
        match p.park(back).await {
            Ok(both) => {
                resumed += 1;
                tracing::info!(operator = %who.name, session = %p.session, resumed, "session resumed");
                conns = both;
            }
            Err((over, back)) => break (over, back),
        }
    };
    // Tokens die before anything is closed: a late Resume is told the session ended (and
    // why, when the relay ended it).
    let answer = match over {
        Over::Stopped(stop) => {
            relay.tickets.end(&session_id, stop.reason());
            p.live.ended(Some(stop.reason().to_string()));
            replies::session_ended_because(stop.reason())
        }
        Over::NotResumed(_) => {
            relay.tickets.remove(&session_id);
            p.live.ended(None);
            replies::session_ended()
        }
    };
    p.arrivals.close();
    let mut waiting = waiting;
    while let Ok(late) = p.arrivals.try_recv() {
        waiting.place(late);
    }
    waiting.close_all(&answer).await;
    drop(registered);
    tracing::info!(
        operator = %who.name,
        session = %p.session,
        duration_secs = started.elapsed().as_secs(),
        bytes_to_agent = p.bytes.0,
        bytes_to_operator = p.bytes.1,
        resumed,
        ended_by = over.ended_by(),
        "session ended"
    );
    if let Over::Stopped(Stop::RecordingStalled) = over {
        p.record_stalled().await;
    }
    p.record_closed(&last_break, over, resumed).await;
    // Events and recording pieces still on their way (the agent's account of the end) may be
    // handed in a little longer.
    let relay_live = Arc::clone(relay);
    tokio::spawn(async move {
        tokio::time::sleep(crate::net::live::GRACE).await;
        relay_live.live.remove(&session_id);
        relay_live.tickets.forget(&session_id);
    });
}

/// The last time the session's connections broke, and how.
#[derive(Debug)]
struct Break {
    /// Unix seconds.
    at: u64,
    /// What happened, in words.
    what: String,
    /// Not a side closing its connection.
    abnormal: bool,
}

impl Break {
    fn now(what: &str, abnormal: bool) -> Self {
        Self {
            at: sightline_net::clock::now_unix(),
            what: what.to_string(),
            abnormal,
        }
    }

    /// From the forwarder's account of an interruption: a side that closed its connection is
    /// how a session normally ends (the relay cannot read the end-to-end goodbye).
    fn of(ended_by: &str) -> Self {
        match ended_by {
            "operator" | "agent" => {
                Self::now(&format!("the {ended_by} closed the connection"), false)
            }
            other => Self::now(&format!("connection lost ({other})"), true),
        }
    }
}

/// What a session's record says of its two connections (taken from them before any await:
/// a connection's stream is not shared between threads).
struct Opening {
    addresses: (String, String),
    agent_key: Option<String>,
}

impl Opening {
    fn of(operator: &Conn, agent: &Conn) -> Self {
        Self {
            addresses: (operator.peer.to_string(), agent.peer.to_string()),
            agent_key: agent.identity.as_ref().map(|k| k.fingerprint().to_string()),
        }
    }
}

impl Pairing<'_> {
    /// Writes the session's record before anyone is told it is paired; `false` (logged) when
    /// it cannot be written: the session does not start unrecorded.
    async fn record_opened(&self, opening: Opening) -> bool {
        let id = self.session.clone();
        let account = self.who.name.clone();
        let Opening {
            addresses,
            agent_key,
        } = opening;
        let written = self
            .relay
            .with_db(move |db| {
                let opened = sessions::Opened {
                    id: &id,
                    operator: &account,
                    addresses,
                    agent_key,
                    at: sightline_net::clock::now_unix(),
                };
                sessions::open(db, &opened)
            })
            .await;
        match &written {
            Ok(()) => self.relay.audit_recorded(),
            Err(e) => {
                tracing::error!(session = %self.session, error = %e, "cannot record the session; refusing to pair it")
            }
        }
        written.is_ok()
    }

    /// `recording.stalled`: the relay ended the session because its recording stopped.
    async fn record_stalled(&self) {
        let (id, operator) = (self.session.clone(), self.who.name.clone());
        let detail = format!(
            "no recording upload for {} s while the session ran; the session was ended",
            recording_watch::STALL.as_secs()
        );
        let written = self
            .relay
            .with_db(move |db| {
                let now = sightline_net::clock::now_unix();
                recordings::stalled(db, &id, &operator, &detail, now)
            })
            .await;
        match written {
            Ok(()) => self.relay.audit_recorded(),
            Err(e) => {
                tracing::error!(session = %self.session, error = %e, "cannot record the stalled recording")
            }
        }
    }

    /// Completes the session's record: it ended when its connections last broke (a parked
    /// session that nobody resumed ended then, not when the window ran out).
    async fn record_closed(&self, last: &Break, over: Over, resumed: u32) {
        let id = self.session.clone();
        // A session not resumed after a break ended at the break, for the break's reason; the
        // relay's own reason says why it was not resumed. One the relay stopped says why.
        let what = match over {
            Over::NotResumed(reason) if last.abnormal => format!("{}; {reason}", last.what),
            _ => last.what.clone(),
        };
        let (abnormal, at, bytes) = (last.abnormal, last.at, self.bytes);
        let written = self
            .relay
            .with_db(move |db| {
                let closed = sessions::Closed {
                    at,
                    reason: &what,
                    abnormal,
                    bytes,
                    resumed,
                };
                sessions::close(db, &id, &closed).map(|_| ())
            })
            .await;
        match written {
            Ok(()) => self.relay.audit_recorded(),
            Err(e) => {
                tracing::error!(session = %self.session, error = %e, "cannot record the end of the session")
            }
        }
    }

    /// Tells both sides they are paired, then forwards until a connection ends, a side comes
    /// back on a new connection, or the relay stops the session (its certificate revoked, its
    /// required recording silent).
    async fn pair_and_forward(&mut self, conns: (Conn, Conn)) -> Interruption {
        let (mut operator, mut agent) = conns;
        let tokens: Tokens =
            self.relay
                .tickets
                .issue(self.session_id, self.handoff.clone(), &mut OsRng);
        let paired = |resume_token| RelayMessage::Paired {
            session_id: self.session_id,
            authority: self.who.authority.clone(),
            resume_token,
        };
        let told = async {
            operator.send(&paired(tokens.0)).await?;
            agent.send(&paired(tokens.1)).await
        }
        .await;
        // The slots of the connections before these are no longer needed.
        self.slots.clear();
        if let Err(e) = told {
            let _ = operator.stream.shutdown().await;
            let _ = agent.stream.shutdown().await;
            self.slots.extend([operator.slot, agent.slot]);
            return Interruption::Broken {
                ended_by: format!("a side left during pairing: {e}"),
                early: None,
            };
        }
        let forwarding_since = Instant::now();
        let active = self.relay.session_started();
        tracing::info!(operator = %self.who.name, session = %self.session, agent = %agent.peer, active, "session paired");
        // The control channels end here; from now on the streams carry the end-to-end session.
        let Conn {
            stream: op_stream,
            slot: op_slot,
            ..
        } = operator;
        let Conn {
            stream: agent_stream,
            slot: agent_slot,
            ..
        } = agent;
        self.slots.extend([op_slot, agent_slot]);
        let (op_stream, op_leftover) = op_stream.into_parts();
        let (agent_stream, agent_leftover) = agent_stream.into_parts();
        // Dropping the forwarding future (revoked, or a side is back) closes both connections.
        let outcome = tokio::select! {
            r = forward::forward(op_stream, &op_leftover, agent_stream, &agent_leftover) => {
                self.bytes.0 += r.a_to_b;
                self.bytes.1 += r.b_to_a;
                Interruption::Broken {
                    ended_by: match r.ended {
                        Ended::ByA => "operator".to_string(),
                        Ended::ByB => "agent".to_string(),
                        Ended::Error(e) => format!("error: {e}"),
                    },
                    early: None,
                }
            }
            stop = &mut self.stop => Interruption::Stopped(stop.unwrap_or(Stop::Revoked)),
            _ = recording_watch::stalled(&self.live, forwarding_since) => {
                tracing::warn!(operator = %self.who.name, session = %self.session,
                    "the required recording stopped; ending the session");
                Interruption::Stopped(Stop::RecordingStalled)
            }
            Some(early) = self.arrivals.recv() => Interruption::Broken {
                ended_by: format!("{} came back on a new connection", early.side.name()),
                early: Some(Box::new(early)),
            },
        };
        self.relay.session_ended();
        outcome
    }

    /// Waits until both sides are back (`Ok`), or the window passes or the relay stops the
    /// session (`Err` with why and whoever came back meanwhile).
    async fn park(&mut self, mut back: Back) -> Result<(Conn, Conn), (Over, Back)> {
        let window = tokio::time::sleep(self.relay.tickets.window());
        tokio::pin!(window);
        loop {
            if let Some(both) = back.both() {
                return Ok(both);
            }
            tokio::select! {
                _ = &mut window => {
                    tracing::info!(operator = %self.who.name, session = %self.session,
                        "parked session expired: not resumed within the window");
                    return Err((Over::NotResumed("not resumed within the resume window"), back));
                }
                stop = &mut self.stop => {
                    return Err((Over::Stopped(stop.unwrap_or(Stop::Revoked)), back))
                }
                arrival = self.arrivals.recv() => match arrival {
                    Some(a) => {
                        tracing::info!(operator = %self.who.name, session = %self.session,
                            side = a.side.name(), peer = %a.conn.peer, "a side came back");
                        back.place(a);
                    }
                    // Not while this task holds a sender.
                    None => return Err((Over::NotResumed("internal: hand-over closed"), back)),
                },
            }
        }
    }
}

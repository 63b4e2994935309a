//! The attackers: slowloris connections that hold sockets open (half stop in the middle of
//! the channel handshake, half complete it and then say nothing) and guessers that join with
//! random codes from many addresses.

use crate::attack::sources::{connect_from, Block};
use anyhow::Result;
use serde::Serialize;
use sightline_core::code::SessionCode;
use sightline_core::identity::Fingerprint;
use sightline_core::relay_proto::RelayErrorKind;
use sightline_net::{ClientError, RelayClient};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Connections opened at once while building the slowloris set.
const OPEN_AT_ONCE: usize = 64;

/// Held connections; dropping it closes them.
#[derive(Debug, Default)]
pub struct Held {
    raw: Vec<TcpStream>,
    handshaken: Vec<RelayClient>,
    /// Connections the relay refused or cut while they were being opened.
    pub refused: usize,
}

impl Held {
    /// Connections held open (from this side: the relay may have closed some since).
    pub fn len(&self) -> usize {
        self.raw.len() + self.handshaken.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Raw connections the relay has closed since they were opened.
    pub fn raw_closed(&self) -> usize {
        let mut buf = [0u8; 64];
        self.raw
            .iter()
            .filter(|t| match t.try_read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            })
            .count()
    }
}

/// Opens `count` slowloris connections, each from its own address of [`Block::SLOW`]: even
/// ones send the first byte of a frame and stop; odd ones complete the channel handshake and
/// send nothing more.
pub async fn slowloris(relay: SocketAddr, pin: Fingerprint, count: usize) -> Held {
    let mut held = Held::default();
    let mut next = 0;
    while next < count {
        let mut batch = JoinSet::new();
        for i in next..(next + OPEN_AT_ONCE).min(count) {
            batch.spawn(open_slow(relay, pin, i));
        }
        next = (next + OPEN_AT_ONCE).min(count);
        while let Some(done) = batch.join_next().await {
            match done {
                Ok(Ok(Slow::Raw(t))) => held.raw.push(t),
                Ok(Ok(Slow::Handshaken(c))) => held.handshaken.push(*c),
                _ => held.refused += 1,
            }
        }
    }
    held
}

enum Slow {
    Raw(TcpStream),
    Handshaken(Box<RelayClient>),
}

async fn open_slow(relay: SocketAddr, pin: Fingerprint, i: usize) -> Result<Slow> {
    let mut tcp = connect_from(Block::SLOW.addr(i), relay).await?;
    if i.is_multiple_of(2) {
        tcp.write_all(&[0]).await?;
        Ok(Slow::Raw(tcp))
    } else {
        let client = RelayClient::connect_stream(tcp, pin).await?;
        Ok(Slow::Handshaken(Box::new(client)))
    }
}

/// What the guessers got back, by answer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Guesses {
    /// Join attempts made.
    pub attempts: usize,
    /// Answers by kind ("code not valid", "rate limited", "connection refused", ...).
    pub answers: BTreeMap<String, usize>,
    /// Guesses that hit a live code (should be 0: the odds are 10^-10 per guess).
    pub hits: usize,
}

/// Runs `addresses` guessers from [`Block::GUESS`] until `stop` is set, each making at most
/// `attempts` joins with random codes, one after another.
pub async fn guessers(
    relay: SocketAddr,
    pin: Fingerprint,
    addresses: usize,
    attempts: usize,
    stop: Arc<AtomicBool>,
) -> Guesses {
    let mut tasks = JoinSet::new();
    for i in 0..addresses {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut mine = Guesses::default();
            for _ in 0..attempts {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let answer = guess_once(relay, pin, i).await;
                mine.attempts += 1;
                if answer == "paired" {
                    mine.hits += 1;
                }
                *mine.answers.entry(answer).or_default() += 1;
            }
            mine
        });
    }
    let mut all = Guesses::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(g) = done {
            all.attempts += g.attempts;
            all.hits += g.hits;
            for (k, v) in g.answers {
                *all.answers.entry(k).or_default() += v;
            }
        }
    }
    all
}

async fn guess_once(relay: SocketAddr, pin: Fingerprint, i: usize) -> String {
    let code = SessionCode::generate(&mut rand_core::OsRng);
    let client = match connect_from(Block::GUESS.addr(i), relay).await {
        Ok(tcp) => RelayClient::connect_stream(tcp, pin).await,
        Err(_) => return "cannot connect".into(),
    };
    let result = match client {
        Ok(c) => tokio::time::timeout(Duration::from_secs(10), c.join(&code))
            .await
            .unwrap_or(Err(ClientError::Timeout(Duration::from_secs(10)))),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => "paired".into(),
        Err(e) => answer_name(&e),
    }
}

/// A short name for a refusal, for the report.
pub fn answer_name(e: &ClientError) -> String {
    match e {
        ClientError::Refused { kind, .. } => match kind {
            RelayErrorKind::CodeNotValid => "code not valid".into(),
            RelayErrorKind::RateLimited => "rate limited".into(),
            RelayErrorKind::Busy => "busy".into(),
            other => format!("{other:?}"),
        },
        ClientError::Timeout(_) => "timeout".into(),
        ClientError::Closed | ClientError::Stream(_) => "connection closed".into(),
        ClientError::Dial(_) => "cannot connect".into(),
        other => format!("error: {other}"),
    }
}

//! The customers the relay must keep serving: an operator logs in, asks for a code, the
//! customer joins with it from an address of its own, and the two ends stream through the
//! relay. Times each step.

use crate::attack::sources::{connect_from, Block};
use crate::relay_bench::pairing::Target;
use crate::relay_bench::relay_proc::{Account, PASSWORD};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use sightline_core::relay_proto::Secret;
use sightline_net::stream::BoxIo;
use sightline_net::RelayClient;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// How long a customer tries to pair before the session counts as failed.
const PAIR_GIVE_UP: Duration = Duration::from_secs(60);
/// Bytes each end sends the other once paired.
const STREAM_BYTES: usize = 1 << 20;

/// One legitimate session, timed.
#[derive(Debug, Clone, Serialize)]
pub struct Legit {
    /// Connect, channel handshake and login with password and second factor, ms.
    pub login_ms: f64,
    /// From the customer's first packet to both ends paired (connect, channel handshake,
    /// join), ms.
    pub pair_ms: f64,
    /// Both directions' megabyte delivered, ms.
    pub stream_ms: f64,
}

/// Runs one session per account, all at once; returns each session's result.
pub async fn sessions(
    target: &Target,
    relay: SocketAddr,
    accounts: Vec<Account>,
) -> Vec<Result<Legit>> {
    let mut tasks = JoinSet::new();
    for (i, account) in accounts.into_iter().enumerate() {
        let target = target.clone();
        tasks.spawn(async move { (i, one(&target, relay, account, i).await) });
    }
    let mut results: Vec<(usize, Result<Legit>)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => results.push(r),
            Err(e) => results.push((usize::MAX, Err(anyhow!("session task failed: {e}")))),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

async fn one(target: &Target, relay: SocketAddr, mut account: Account, i: usize) -> Result<Legit> {
    let factor = account
        .next_factor()
        .ok_or_else(|| anyhow!("account {} has no second factor left", account.name))?;
    let start = Instant::now();
    let mut operator = RelayClient::connect(&target.addr, target.pin).await?;
    operator
        .login(
            &account.name,
            Secret::new(PASSWORD),
            Some(Secret::new(factor)),
            &target.key,
        )
        .await
        .with_context(|| format!("login as {}", account.name))?;
    let created = operator.create_session().await.context("create session")?;
    let login_ms = ms(start.elapsed());

    let start = Instant::now();
    let customer = async {
        let tcp = connect_from(Block::CUSTOMERS.addr(i), relay).await?;
        let agent = RelayClient::connect_stream(tcp, target.pin).await?;
        agent.join(&created.code).await.context("customer joining")
    };
    let operator =
        async { (operator.wait_paired().await).context("operator waiting for the customer") };
    // A refused customer ends the wait at once (the operator alone would wait for the code
    // to expire).
    let ((op_stream, _), joined) =
        tokio::time::timeout(PAIR_GIVE_UP, async { tokio::try_join!(operator, customer) })
            .await
            .map_err(|_| anyhow!("not paired after {} s", PAIR_GIVE_UP.as_secs()))??;
    let pair_ms = ms(start.elapsed());

    let (op_tcp, op_rest) = op_stream.into_parts();
    let (ag_tcp, ag_rest) = joined.stream.into_parts();
    if !op_rest.is_empty() || !ag_rest.is_empty() {
        bail!("bytes after Paired before anyone sent any");
    }
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), exchange(op_tcp, ag_tcp))
        .await
        .map_err(|_| anyhow!("streaming did not finish in 30 s"))??;
    Ok(Legit {
        login_ms,
        pair_ms,
        stream_ms: ms(start.elapsed()),
    })
}

/// Each end sends [`STREAM_BYTES`] and reads the other's.
async fn exchange(a: BoxIo, b: BoxIo) -> Result<()> {
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let data = vec![0x5a_u8; STREAM_BYTES];
    let send_a = a_write.write_all(&data);
    let send_b = b_write.write_all(&data);
    let mut got_a = vec![0u8; STREAM_BYTES];
    let mut got_b = vec![0u8; STREAM_BYTES];
    let recv_a = a_read.read_exact(&mut got_a);
    let recv_b = b_read.read_exact(&mut got_b);
    let (s1, s2, r1, r2) = tokio::join!(send_a, send_b, recv_a, recv_b);
    s1?;
    s2?;
    r1?;
    r2?;
    if got_a != data || got_b != data {
        bail!("the relay changed the bytes");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

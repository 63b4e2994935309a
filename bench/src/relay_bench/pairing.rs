//! Pairing sessions through the relay the way viewer and agent do, without video: the operator
//! connects (Noise channel, relay key checked against the pin), logs in with password and
//! second factor, asks for a code; the agent connects and joins with it. After `Paired` both
//! streams carry whatever the two ends send, forwarded unread.
//!
//! The relay ends an operator's login with its session (`CreateSession` consumes it), so every
//! session costs one full login: argon2id, the check of the operator's proof of possession (an
//! RSA verification) and an RSA-4096 certificate signature on the relay, and the proof's RSA
//! signature on the client.

use crate::relay_bench::relay_proc::{Account, PASSWORD};
use anyhow::{anyhow, bail, Context, Result};
use sightline_core::cert::OperatorCert;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::relay_proto::Secret;
use sightline_net::relay_client::CreatedSession;
use sightline_net::stream::BoxIo;
use sightline_net::RelayClient;
use std::sync::{Arc, Mutex};

/// The two ends of one paired session, as raw byte streams.
#[derive(Debug)]
pub struct Paired {
    /// The operator's connection (the viewer's side).
    pub operator: BoxIo,
    /// The customer's connection (the agent's side).
    pub agent: BoxIo,
}

/// Where and as whom to pair.
#[derive(Debug, Clone)]
pub struct Target {
    /// Relay address.
    pub addr: String,
    /// Pinned CA fingerprint.
    pub pin: Fingerprint,
    /// The operator key certificates are issued for (one for all logins: its generation is
    /// the client's cost, not the relay's); it signs each login's proof of possession.
    pub key: Arc<PrivateIdentity>,
}

/// Accounts not in use; a worker takes one out while it logs in with it, so the second factors
/// of one account are always presented in order.
#[derive(Debug, Default)]
pub struct AccountPool(Mutex<Vec<Account>>);

impl AccountPool {
    /// A pool of `accounts`.
    pub fn new(accounts: Vec<Account>) -> Self {
        Self(Mutex::new(accounts))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Account>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Option<Account> {
        self.lock().pop()
    }

    fn put_back(&self, accounts: impl IntoIterator<Item = Account>) {
        // To the front: accounts used up now may have a TOTP step again later.
        let mut all = self.lock();
        let mut back: Vec<Account> = accounts.into_iter().collect();
        back.append(&mut all);
        *all = back;
    }

    /// A user name and a second factor the relay will accept for it now, from any account in
    /// the pool that has one left.
    pub fn next_login(&self) -> Result<(String, String)> {
        let mut all = self.lock();
        for account in all.iter_mut() {
            if let Some(factor) = account.next_factor() {
                return Ok((account.name.clone(), factor));
            }
        }
        bail!("no operator account has a second factor left")
    }

    /// Accounts in the pool.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Logs in as `user` with `factor` and asks for a session code: the client (waiting for the
/// customer), the code, and the certificate issued at the login.
pub async fn login_and_create(
    target: &Target,
    user: &str,
    factor: String,
) -> Result<(RelayClient, CreatedSession, OperatorCert)> {
    let mut operator = RelayClient::connect(&target.addr, target.pin).await?;
    let grant = operator
        .login(
            user,
            Secret::new(PASSWORD),
            Some(Secret::new(factor)),
            &target.key,
        )
        .await
        .with_context(|| format!("login as {user}"))?;
    let created = operator.create_session().await.context("create session")?;
    Ok((operator, created, grant.certificate))
}

/// Pairs one session as `user` with `factor`.
pub async fn pair_one(target: &Target, user: &str, factor: String) -> Result<Paired> {
    let (operator, created, _) = login_and_create(target, user, factor).await?;
    let agent = RelayClient::connect(&target.addr, target.pin).await?;
    let (op, ag) = tokio::join!(operator.wait_paired(), agent.join(&created.code));
    let (op_stream, op_session) = op.context("operator waiting for the agent")?;
    let joined = ag.context("agent joining")?;
    let (agent_stream, agent_session) = (joined.stream, joined.session_id);
    if op_session != agent_session {
        bail!("operator and agent were told different session ids");
    }
    let (operator, op_rest) = op_stream.into_parts();
    let (agent, agent_rest) = agent_stream.into_parts();
    if !op_rest.is_empty() || !agent_rest.is_empty() {
        bail!("bytes after Paired before anyone sent any");
    }
    Ok(Paired { operator, agent })
}

/// Pairs `count` sessions with `concurrency` logins in flight, taking accounts from `pool`.
/// Stops at the first failure: a failed login counts against the relay's brute-force limits,
/// and the benchmark must not trip them.
pub async fn pair_many(
    target: &Target,
    pool: &Arc<AccountPool>,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Paired>> {
    let workers = concurrency.clamp(1, count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        // Worker w pairs every workers-th session.
        let share = count / workers + usize::from(w < count % workers);
        let (target, pool) = (target.clone(), pool.clone());
        tasks.spawn(async move { worker(&target, &pool, share).await });
    }
    let mut all = Vec::with_capacity(count);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| anyhow!("pairing task failed: {e}")) {
            Ok(Ok(mut paired)) => all.append(&mut paired),
            Ok(Err(e)) | Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.context(format!("{} of {count} sessions paired", all.len()))),
        None => Ok(all),
    }
}

async fn worker(target: &Target, pool: &AccountPool, share: usize) -> Result<Vec<Paired>> {
    let mut paired = Vec::with_capacity(share);
    let mut spent = Vec::new();
    let mut current: Option<Account> = None;
    let result = async {
        while paired.len() < share {
            let account = match current.as_mut() {
                Some(a) => a,
                None => current.insert(pool.take().ok_or_else(|| {
                    anyhow!("out of operator accounts after {} sessions", paired.len())
                })?),
            };
            match account.next_factor() {
                Some(factor) => {
                    let user = account.name.clone();
                    paired.push(pair_one(target, &user, factor).await?);
                }
                None => spent.extend(current.take()),
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    pool.put_back(spent.into_iter().chain(current));
    result.map(|()| paired)
}

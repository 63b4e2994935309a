//! LAN-only kiosk mode (`agent --lan-only`): listens for direct connections from the local
//! network, refuses any address outside the allowed ranges before reading a byte, runs the
//! preamble and the end-to-end handshake under a deadline, checks the operator against the
//! pinned relay root (and its revocation list, [`super::revocations`]) and/or the listed
//! keys, and serves unattended sessions until SIGTERM. Everything it does goes on its own
//! audit log ([`super::audit`]); a session whose start cannot be recorded is refused.

use super::audit::{self, events, KioskLog};
use super::revocations::KioskRevocations;
use super::session::{self, Operator, SessionSettings};
use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use rand_core::{OsRng, RngCore};
use serde_json::json;
use sightline_agent::lan::AddressPolicy;
use sightline_agent::rights::Rights;
use sightline_agent::share::ShareConfig;
use sightline_core::cert::{Permissions, RecordingMode};
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::identity::{DEFAULT_IDENTITY_BITS, MIN_PEER_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_core::messages::CloseReason;
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::SessionEnd;
use sightline_net::stream::FramedStream;
use sightline_net::{clock, keystore};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What `agent --lan-only` was asked to do.
#[derive(Debug)]
pub struct KioskOptions {
    pub share: ShareConfig,
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub relay: Option<String>,
    pub relay_key: Option<String>,
    pub operator_keys: Vec<Fingerprint>,
    pub key_permissions: String,
    pub allow: Vec<IpNet>,
    pub listen: Vec<SocketAddr>,
    pub handshake_timeout: Duration,
    pub consent_timeout: Duration,
    pub max_sessions: u32,
    pub max_pending: u32,
    pub revocation_list: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
}

/// LAN-only kiosk mode: serves direct connections until SIGINT/SIGTERM. Each connection is
/// checked by address before anything is read, then gets its own handshake under a deadline.
pub async fn serve(opts: KioskOptions, out: Output) -> Result<SessionEnd> {
    // Nobody answers a Wayland desktop's screen-sharing dialog at a kiosk: X11 where it is.
    sightline_agent::capture::set_unattended();
    let config = ClientConfig::load("agent", opts.config.as_deref())?;
    if opts.relay.is_some() {
        bail!("--relay makes no sense with --lan-only: a LAN-only agent never contacts a relay");
    }
    let ca_pin = match opts.relay_key.or(config.relay_key) {
        Some(text) => Some(
            text.parse::<Fingerprint>()
                .map_err(|e| anyhow!("--relay-key: {e}"))?,
        ),
        None => None,
    };
    if ca_pin.is_none() && opts.operator_keys.is_empty() {
        bail!("a LAN-only agent needs to know whom to accept: --relay-key FINGERPRINT (operators with a certificate from that relay) and/or --operator-key FINGERPRINT");
    }
    let revocations = match (ca_pin, opts.revocation_list.clone()) {
        (None, Some(_)) => bail!(
            "--revocation-list needs --relay-key: the list is checked against the relay's root key"
        ),
        (None, None) => None,
        // A list that does not verify stops the agent here, before it listens.
        (Some(pin), file) => Some(Arc::new(
            tokio::task::spawn_blocking(move || KioskRevocations::load(pin, file, out)).await??,
        )),
    };
    let key_permissions = parse_permissions(&opts.key_permissions)?;
    let dir = cli::data_dir("agent", opts.data_dir.clone())?;
    let key_path = dir.join("identity-key.pem");
    let (key, _) = tokio::task::spawn_blocking(move || {
        keystore::load_or_create_key(&key_path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)
    })
    .await??;
    let log_path = opts
        .audit_log
        .clone()
        .unwrap_or_else(|| dir.join(audit::DEFAULT_FILE));
    let key_path = dir.join(audit::KEY_FILE);
    // A log that cannot be continued stops the kiosk here, before it listens.
    let log = Arc::new(
        tokio::task::spawn_blocking(move || KioskLog::open(&log_path, &key_path))
            .await?
            .map_err(|e| anyhow!(e))?,
    );
    let kiosk = Arc::new(Kiosk {
        log: log.clone(),
        key,
        ca_pin,
        operator_keys: opts.operator_keys.clone(),
        key_permissions,
        addresses: AddressPolicy::new(opts.allow.clone()),
        handshake_timeout: opts.handshake_timeout,
        settings: SessionSettings {
            signing_key: None,
            out,
            share: opts.share,
            consent_timeout: opts.consent_timeout,
            unattended: true,
        },
        sessions: Arc::new(Semaphore::new(opts.max_sessions as usize)),
        pending: Arc::new(Semaphore::new(opts.max_pending as usize)),
        revocations: revocations.clone(),
    });
    if let Some(r) = revocations {
        tokio::spawn(r.watch());
    }
    let addrs = if opts.listen.is_empty() {
        vec![SocketAddr::from((
            [0, 0, 0, 0],
            sightline_core::DEFAULT_PORT,
        ))]
    } else {
        opts.listen.clone()
    };
    // Before "listening": a supervisor may stop us as soon as it reads that.
    let stop_signal = cli::shutdown_signal();
    let mut listeners = Vec::new();
    for addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = l.local_addr()?;
        // The key viewers pin (`viewer --direct … --agent-key`), as `agent fingerprint` prints it.
        let fingerprint = kiosk.key.public().fingerprint().to_string();
        out.event(
            json!({"event": "listening", "address": local.to_string(), "fingerprint": fingerprint}),
            || format!("LAN-only agent listening on {local}; its key fingerprint is {fingerprint}"),
        );
        tracing::info!(address = %local, ca = ?kiosk.ca_pin.map(|f| f.to_string()),
            operator_keys = kiosk.operator_keys.len(), "LAN-only agent listening");
        listeners.push(l);
    }
    let fingerprint = kiosk.key.public().fingerprint().to_string();
    let started = events::started(
        &fingerprint,
        &listeners
            .iter()
            .filter_map(|l| l.local_addr().ok().map(|a| a.to_string()))
            .collect::<Vec<_>>(),
        &opts.allow.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        kiosk.ca_pin.map(|f| f.to_string()),
        &kiosk
            .operator_keys
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>(),
    );
    audit::write(&log, started)
        .await
        .map_err(|e| anyhow!("cannot record the start in the kiosk's audit log: {e}"))?;
    out.event(
        json!({"event": "audit_log", "path": log.path().display().to_string(), "key": log.public_key()}),
        || format!("Audit log: {} (checkpoint key {})", log.path().display(), log.public_key()),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let kiosk = kiosk.clone();
        let stop = stop_rx.clone();
        tasks.spawn(accept_loop(listener, kiosk, stop));
    }
    stop_signal.await;
    tracing::info!("stopping: ending sessions");
    let _ = stop_tx.send(true);
    // Sessions end with an explicit close; give them a moment.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let stopped = events::stopped(&fingerprint, log.refusals_left_out());
    let recorded = match audit::write(&log, stopped).await {
        Ok(()) => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.checkpoint(clock::now_unix())).await?
        }
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record the stop in the kiosk's audit log");
    }
    out.event(json!({"event": "stopped"}), || {
        "LAN-only agent stopped.".into()
    });
    Ok(SessionEnd::LocalClosed(CloseReason::Shutdown))
}

impl Kiosk {
    /// A refused connection, on the audit log unless the rate limit leaves it out.
    fn refused(&self, peer: SocketAddr, why: &str) {
        let Some(event) = self.log.refusal(clock::now_unix(), &peer.to_string(), why) else {
            return;
        };
        let log = self.log.clone();
        tokio::spawn(async move {
            if let Err(e) = audit::write(&log, event).await {
                tracing::error!(error = %e, "cannot record a refused connection");
            }
        });
    }
}

/// What a LAN-only agent needs for every connection.
#[derive(Debug)]
struct Kiosk {
    key: PrivateIdentity,
    log: Arc<KioskLog>,
    ca_pin: Option<Fingerprint>,
    operator_keys: Vec<Fingerprint>,
    key_permissions: Permissions,
    addresses: AddressPolicy,
    handshake_timeout: Duration,
    settings: SessionSettings,
    sessions: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    /// The revocation list, when a relay root is pinned.
    revocations: Option<Arc<KioskRevocations>>,
}

async fn accept_loop(
    listener: TcpListener,
    kiosk: Arc<Kiosk>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Refused before anything is read or sent: the peer learns nothing.
        if let Err(why) = kiosk.addresses.admits(peer.ip()) {
            tracing::warn!(%peer, reason = %why, "connection refused before the handshake");
            drop(tcp);
            kiosk.refused(peer, &why.to_string());
            continue;
        }
        let Ok(pending) = kiosk.pending.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many connections in their handshake");
            kiosk.refused(peer, "too many connections in their handshake");
            continue;
        };
        let kiosk = kiosk.clone();
        let stop = stop.clone();
        sessions.spawn(async move {
            if let Err(e) = direct_session(tcp, peer, &kiosk, pending, stop).await {
                tracing::warn!(%peer, error = %e, "direct session failed");
                kiosk.refused(peer, &e.to_string());
                kiosk.settings.out.event(
                    json!({"event": "refused", "peer": peer.to_string(), "message": e.to_string()}),
                    || format!("Connection from {peer} refused: {e}"),
                );
            }
        });
    }
    // Stopping: each running session closes on the stop signal.
    while sessions.join_next().await.is_some() {}
}

/// One direct connection: preamble and handshake under the deadline, then the session. The
/// operator is authenticated before anything else: only then does the connection take a
/// session slot, and only then does the kiosk sign its own proof, so a peer on the LAN that
/// cannot authenticate can neither block the only slot nor collect signatures.
async fn direct_session(
    tcp: TcpStream,
    peer: SocketAddr,
    kiosk: &Kiosk,
    pending: OwnedSemaphorePermit,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut stream = FramedStream::new(tcp);
    let mut session_id = [0u8; 16];
    OsRng.fill_bytes(&mut session_id);
    let handshake = async {
        let held = kiosk.revocations.as_ref().and_then(|r| r.sequence());
        let hello = AgentHello::new(session_id, held);
        stream
            .write_all(&frame::encode(&hello.to_bytes()?)?)
            .await?;
        let answer = stream
            .read_message()
            .await?
            .ok_or_else(|| anyhow!("closed before the operator's hello"))?;
        let answer = OperatorHello::from_bytes(&answer)?;
        let ca = match &kiosk.ca_pin {
            Some(pin) => answer.pinned_authority(pin, clock::now_unix())?,
            None => None,
        };
        if kiosk.ca_pin.is_some() && ca.is_none() {
            bail!("the operator offered no relay certificate authority");
        }
        // A newer list from the operator's last relay login: adopted (and written to the
        // list file) before this operator's certificate is checked against it.
        if let (Some(pin), Some(revocations)) = (&kiosk.ca_pin, &kiosk.revocations) {
            if let Some(list) = answer.pinned_revocations(pin)? {
                let r = revocations.clone();
                tokio::task::spawn_blocking(move || r.offered(list)).await?;
            }
        }
        let cfg = E2eConfig {
            session_id,
            seed: clock::seed(),
            trust: Trust::AuthorisedOperators {
                ca,
                keys: kiosk.operator_keys.clone(),
                revoked: kiosk.revocations.as_ref().and_then(|r| r.current()),
            },
            channel: Default::default(),
        };
        Ok::<_, anyhow::Error>(
            sightline_net::session::agent_verify_operator(&mut stream, cfg).await?,
        )
    };
    let deadline = tokio::time::Instant::now() + kiosk.handshake_timeout;
    let late = || {
        anyhow!(
            "handshake not completed within {:?}",
            kiosk.handshake_timeout
        )
    };
    let verified = tokio::time::timeout_at(deadline, handshake)
        .await
        .map_err(|_| late())??;
    // Authenticated: now, and only now, a session slot.
    let Ok(_slot) = kiosk.sessions.clone().try_acquire_owned() else {
        bail!("a session is already running");
    };
    let identity = verified.peer().clone();
    let fingerprint = identity.fingerprint.to_string();
    let operator = match &identity.certificate {
        Some(cert) => Operator {
            verified_by: "this kiosk's pinned relay certificate",
            ..Operator::certified(cert, fingerprint.clone())
        },
        None => Operator {
            account: fingerprint.clone(),
            display_name: format!("operator key {}", &fingerprint[..16]),
            organisation: String::new(),
            rights: Rights {
                permissions: kiosk.key_permissions,
                max_session: None,
            },
            fingerprint: fingerprint.clone(),
            certificate_expires: None,
            verified_by: "this kiosk's list of operator keys",
            recording: RecordingMode::Off,
        },
    };
    // Recorded before the session proceeds: no record, no session.
    let session_hex = hex::encode(session_id);
    let connected = events::connected(&operator, &peer.to_string(), &session_hex);
    audit::write(&kiosk.log, connected).await.map_err(|e| {
        anyhow!("session refused: it cannot be recorded in the kiosk's audit log ({e})")
    })?;
    let account = operator.account.clone();
    let started = clock::now_unix();
    let ended = |reason: &str, normal: bool, bytes: (u64, u64)| {
        let duration = clock::now_unix().saturating_sub(started);
        events::ended(&account, &session_hex, reason, normal, duration, bytes)
    };
    let prove = sightline_net::session::agent_prove(&mut stream, verified, &kiosk.key);
    let proved = match tokio::time::timeout_at(deadline, prove).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(anyhow!(e)),
        Err(_) => Err(late()),
    };
    let mut session = match proved {
        Ok(session) => session,
        Err(e) => {
            let event = ended(
                &format!("handshake failed: {e}"),
                false,
                stream.byte_counts(),
            );
            if let Err(e) = audit::write(&kiosk.log, event).await {
                tracing::error!(error = %e, "cannot record the end of a session");
            }
            return Err(e);
        }
    };
    drop(pending);
    tracing::info!(%peer, operator = %operator.account, display_name = %operator.display_name,
        %fingerprint, permissions = ?operator.rights.permissions.names(), "direct session started");
    let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let control = tokio::spawn(record_control(
        kiosk.log.clone(),
        control_rx,
        account.clone(),
        session_hex.clone(),
    ));
    // The session runs over any byte stream (a relayed one may change transport on resume).
    let mut stream = stream.boxed();
    let end = session::serve(
        &mut stream,
        &mut session,
        operator,
        &kiosk.settings,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
        // A LAN session has no relay to come back through: it ends with its connection.
        None,
        Some(control_tx),
    )
    .await;
    // The controller is gone, so its channel is closed: every control change is on the log.
    let _ = control.await;
    let event = ended(&end.reason(), end.is_normal(), stream.byte_counts());
    if let Err(e) = audit::write(&kiosk.log, event).await {
        tracing::error!(error = %e, "cannot record the end of a session");
    }
    Ok(())
}

/// Records each change of who controls the kiosk during one session.
async fn record_control(
    log: Arc<KioskLog>,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<bool>,
    operator: String,
    session: String,
) {
    let mut in_control = false;
    while let Some(now) = changes.recv().await {
        if now == in_control {
            continue;
        }
        in_control = now;
        if let Err(e) = audit::write(&log, events::control(now, &operator, &session)).await {
            tracing::error!(error = %e, "cannot record a change of control");
        }
    }
}

fn parse_permissions(text: &str) -> Result<Permissions> {
    let mut set = Permissions::NONE;
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let p = Permissions::from_name(name).ok_or_else(|| {
            anyhow!("--key-permissions: unknown permission {name:?}; use view and control (clipboard and file-transfer are reserved and grant nothing)")
        })?;
        set = set.union(p);
    }
    Ok(set)
}

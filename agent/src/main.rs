//! `agent`: the customer's program. Joins a session with the code the operator reads out,
//! verifies the operator's certificate against the pinned relay CA, and shows who is
//! connecting together with the verification code.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use ipnet::IpNet;
use rand_core::{OsRng, RngCore};
use serde_json::json;
use sightline_agent::control::Control as InputControl;
use sightline_agent::customer::{self, Answer, Command as CustomerCommand, Summary, Usage};
use sightline_agent::indicator::{Hotkey, Indicator, IndicatorText};
use sightline_agent::lan::{self, AddressPolicy};
use sightline_agent::rights::{InputGate, Rights};
use sightline_agent::share::{self, ShareConfig};
use sightline_core::cert::{CertBody, Permissions};
use sightline_core::code::SessionCode;
use sightline_core::e2e::Session;
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::frame;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::identity::{DEFAULT_IDENTITY_BITS, MIN_PEER_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_core::messages::{CloseReason, ConsentFor, Message};
use sightline_media::encode::Backend;
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::{self, AppChannels, SessionEnd};
use sightline_net::stream::FramedStream;
use sightline_net::{clock, keystore, RelayClient};
use std::future::Future;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, unbounded_channel};
use tokio::sync::oneshot;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Parser, Debug)]
#[command(
    name = "agent",
    version,
    about = "Sightline agent: let a help-desk operator support you"
)]
#[command(after_help = "Examples:
  agent --relay relay.example.com:7615 --relay-key 3f5e...c2            (asks for the code)
  agent --relay 127.0.0.1:7615 --relay-key $(relay fingerprint) 123 456 7890 --json
  agent monitors                                                        (lists the screens)
  agent --monitor 1 --relay relay.example.com --relay-key 3f5e...c2 123 456 7890
  agent --lan-only --relay-key 3f5e...c2 --allow 192.168.10.0/24                 (kiosk)

You are asked before your screen is shared and before the operator may use your keyboard and
mouse. While shared, a banner at the top of the screen says so. Type r and Enter (or press
Ctrl+Alt+R) to take control back; type e and Enter, press Ctrl+Alt+Q or Ctrl-C to end.")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Which monitor to share (see `agent monitors`; default: the primary one).
    #[arg(long, value_name = "N")]
    monitor: Option<usize>,
    /// Highest frame rate to capture at.
    #[arg(long, value_name = "FPS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: u32,
    /// Video encoder: `aom` (libaom realtime: fastest, adapts its bitrate to the link) or
    /// `rav1e` (pure Rust). Default: the fastest one this build has.
    #[arg(long, value_name = "NAME", default_value_t = Backend::fastest(), value_parser = Backend::from_name)]
    encoder: Backend,
    /// LAN-only kiosk mode: listen for direct connections from the local network, make no
    /// outbound connection, share without consent questions (the banner still shows).
    #[arg(long)]
    lan_only: bool,
    /// Address to listen on in LAN-only mode; repeat for several [default: 0.0.0.0:7615]
    #[arg(long, value_name = "ADDR", requires = "lan_only")]
    listen: Vec<SocketAddr>,
    /// LAN-only: accept connections only from this range (CIDR or address; local ranges
    /// only); repeat for several. Without it, any private, link-local or loopback address.
    #[arg(long = "allow", value_name = "CIDR", requires = "lan_only", value_parser = lan::parse_cidr)]
    allow: Vec<IpNet>,
    /// LAN-only: an operator key fingerprint (64 hex digits) allowed to connect; repeat for
    /// several. With --relay-key as well, an operator needs both a certificate from that relay
    /// and a listed key.
    #[arg(long = "operator-key", value_name = "HEX", requires = "lan_only")]
    operator_keys: Vec<Fingerprint>,
    /// LAN-only: what operators allowed by key alone (no certificate) may do.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "view,control",
        requires = "lan_only"
    )]
    key_permissions: String,
    /// LAN-only: most sessions at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16), requires = "lan_only")]
    max_sessions: u32,
    /// LAN-only: most connections still in their handshake at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256), requires = "lan_only")]
    max_pending: u32,
    /// LAN-only: seconds a new connection has to complete its handshake.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120), requires = "lan_only")]
    handshake_timeout: u64,
    /// Seconds the customer has to answer a request to view or control (5 to 600).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=600))]
    consent_timeout: u64,
    /// Relay address HOST:PORT (default port 7615).
    #[arg(long, value_name = "ADDR")]
    relay: Option<String>,
    /// Pinned relay key fingerprint, 64 hex digits (branded builds and the config file set it).
    #[arg(long, value_name = "HEX")]
    relay_key: Option<String>,
    /// The session code the operator gave you (asked for on the terminal when missing).
    #[arg(value_name = "CODE", num_args = 0..)]
    code: Vec<String>,
    /// One JSON object per line on stdout for each event.
    #[arg(long)]
    json: bool,
    /// Directory for this agent's identity key (default: the platform data dir + /agent).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (default: the platform config dir + /agent.toml, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Cli {
    /// What to share and how, from the flags (relayed and LAN-only sessions alike).
    fn share_config(&self) -> ShareConfig {
        ShareConfig {
            monitor: self.monitor,
            fps: self.fps,
            encoder: self.encoder,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the monitors that can be shared.
    Monitors,
}

fn main() -> ExitCode {
    cli::init_logging();
    let cli = Cli::parse();
    if let Some(Command::Monitors) = cli.command {
        return list_monitors(cli.json);
    }
    let out = Output { json: cli.json };
    if cli.lan_only {
        return cli::run_main("agent", out, lan_server(cli, out));
    }
    cli::run_main("agent", out, run(cli, out))
}

fn list_monitors(json: bool) -> ExitCode {
    let out = Output { json };
    match sightline_agent::capture::monitors() {
        Ok(list) => {
            for m in list {
                out.event(
                    json!({"event": "monitor", "index": m.index, "name": m.name, "x": m.x, "y": m.y,
                           "width": m.width, "height": m.height, "primary": m.primary}),
                    || {
                        format!(
                            "{}: {} {}x{} at {},{}{}",
                            m.index,
                            m.name,
                            m.width,
                            m.height,
                            m.x,
                            m.y,
                            if m.primary { " (primary)" } else { "" }
                        )
                    },
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            out.fatal("agent", &e.to_string());
            ExitCode::FAILURE
        }
    }
}

fn hello_message() -> Message {
    Message::Hello {
        software: format!("sightline-agent/{}", env!("CARGO_PKG_VERSION")),
        capabilities: vec![],
    }
}

fn read_code(args: &[String]) -> Result<SessionCode> {
    let text = if args.is_empty() {
        eprint!("Session code from your help desk: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the session code")?;
        line
    } else {
        args.join(" ")
    };
    text.parse::<SessionCode>().map_err(|e| anyhow!("{e}"))
}

async fn run(cli: Cli, out: Output) -> Result<SessionEnd> {
    let share = cli.share_config();
    let config = ClientConfig::load("agent", cli.config.as_deref())?;
    let (addr, pin) = config.relay(cli.relay, cli.relay_key)?;
    let code = read_code(&cli.code)?;
    let dir = cli::data_dir("agent", cli.data_dir)?;
    let key_path = dir.join("identity-key.pem");
    let (key, _) = tokio::task::spawn_blocking(move || {
        keystore::load_or_create_key(&key_path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)
    })
    .await??;

    let client = RelayClient::connect(&addr, pin).await?;
    let ca = client.ca().clone();
    let (mut stream, session_id) = client.join(&code).await?;
    let cfg = E2eConfig {
        session_id,
        seed: clock::seed(),
        trust: Trust::OperatorCertificateFrom(ca),
        channel: Default::default(),
    };
    let mut session = session::agent_handshake(&mut stream, cfg, &key).await?;
    let peer = session.peer().clone();
    let cert = peer
        .certificate
        .clone()
        .ok_or_else(|| anyhow!("operator has no certificate"))?;
    let operator = Operator::certified(&cert, peer.fingerprint.to_string());
    let settings = SessionSettings {
        out,
        share,
        consent_timeout: Duration::from_secs(cli.consent_timeout),
        unattended: false,
    };
    let end = serve_session(
        &mut stream,
        &mut session,
        operator,
        &settings,
        cli::shutdown_signal(),
    )
    .await;
    Ok(end)
}

/// LAN-only kiosk mode: serves direct connections until SIGINT/SIGTERM. Each connection is
/// checked by address before anything is read, then gets its own handshake under a deadline.
async fn lan_server(cli: Cli, out: Output) -> Result<SessionEnd> {
    let share = cli.share_config();
    let config = ClientConfig::load("agent", cli.config.as_deref())?;
    if cli.relay.is_some() {
        bail!("--relay makes no sense with --lan-only: a LAN-only agent never contacts a relay");
    }
    let ca_pin = match cli.relay_key.or(config.relay_key) {
        Some(text) => Some(
            text.parse::<Fingerprint>()
                .map_err(|e| anyhow!("--relay-key: {e}"))?,
        ),
        None => None,
    };
    if ca_pin.is_none() && cli.operator_keys.is_empty() {
        bail!("a LAN-only agent needs to know whom to accept: --relay-key FINGERPRINT (operators with a certificate from that relay) and/or --operator-key FINGERPRINT");
    }
    let key_permissions = parse_permissions(&cli.key_permissions)?;
    let dir = cli::data_dir("agent", cli.data_dir.clone())?;
    let key_path = dir.join("identity-key.pem");
    let (key, _) = tokio::task::spawn_blocking(move || {
        keystore::load_or_create_key(&key_path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)
    })
    .await??;
    let kiosk = Arc::new(Kiosk {
        key,
        ca_pin,
        operator_keys: cli.operator_keys.clone(),
        key_permissions,
        addresses: AddressPolicy::new(cli.allow.clone()),
        handshake_timeout: Duration::from_secs(cli.handshake_timeout),
        settings: SessionSettings {
            out,
            share,
            consent_timeout: Duration::from_secs(cli.consent_timeout),
            unattended: true,
        },
        sessions: Arc::new(Semaphore::new(cli.max_sessions as usize)),
        pending: Arc::new(Semaphore::new(cli.max_pending as usize)),
    });
    let addrs = if cli.listen.is_empty() {
        vec![SocketAddr::from((
            [0, 0, 0, 0],
            sightline_core::DEFAULT_PORT,
        ))]
    } else {
        cli.listen.clone()
    };
    let mut listeners = Vec::new();
    for addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = l.local_addr()?;
        out.event(
            json!({"event": "listening", "address": local.to_string()}),
            || format!("LAN-only agent listening on {local}"),
        );
        tracing::info!(address = %local, ca = ?kiosk.ca_pin.map(|f| f.to_string()),
            operator_keys = kiosk.operator_keys.len(), "LAN-only agent listening");
        listeners.push(l);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let kiosk = kiosk.clone();
        let stop = stop_rx.clone();
        tasks.spawn(accept_loop(listener, kiosk, stop));
    }
    cli::shutdown_signal().await;
    tracing::info!("stopping: ending sessions");
    let _ = stop_tx.send(true);
    // Sessions end with an explicit close; give them a moment.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    out.event(json!({"event": "stopped"}), || {
        "LAN-only agent stopped.".into()
    });
    Ok(SessionEnd::LocalClosed(CloseReason::Shutdown))
}

/// What a LAN-only agent needs for every connection.
#[derive(Debug)]
struct Kiosk {
    key: PrivateIdentity,
    ca_pin: Option<Fingerprint>,
    operator_keys: Vec<Fingerprint>,
    key_permissions: Permissions,
    addresses: AddressPolicy,
    handshake_timeout: Duration,
    settings: SessionSettings,
    sessions: Arc<Semaphore>,
    pending: Arc<Semaphore>,
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
            continue;
        }
        let Ok(pending) = kiosk.pending.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many connections in their handshake");
            continue;
        };
        let Ok(slot) = kiosk.sessions.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: a session is already running");
            continue;
        };
        let kiosk = kiosk.clone();
        let stop = stop.clone();
        sessions.spawn(async move {
            let _slot = slot;
            if let Err(e) = direct_session(tcp, peer, &kiosk, pending, stop).await {
                tracing::warn!(%peer, error = %e, "direct session failed");
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

/// One direct connection: preamble and handshake under the deadline, then the session.
async fn direct_session(
    tcp: TcpStream,
    peer: SocketAddr,
    kiosk: &Kiosk,
    pending: OwnedSemaphorePermit,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut stream = FramedStream::new(tcp);
    let handshake = async {
        let mut session_id = [0u8; 16];
        OsRng.fill_bytes(&mut session_id);
        let hello = AgentHello::new(session_id);
        stream
            .write_all(&frame::encode(&hello.to_bytes()?)?)
            .await?;
        let answer = stream
            .read_message()
            .await?
            .ok_or_else(|| anyhow!("closed before the operator's hello"))?;
        let answer = OperatorHello::from_bytes(&answer)?;
        let ca = match &kiosk.ca_pin {
            Some(pin) => answer.pinned_ca(pin)?,
            None => None,
        };
        if kiosk.ca_pin.is_some() && ca.is_none() {
            bail!("the operator offered no relay certificate authority");
        }
        let cfg = E2eConfig {
            session_id,
            seed: clock::seed(),
            trust: Trust::AuthorisedOperators {
                ca,
                keys: kiosk.operator_keys.clone(),
            },
            channel: Default::default(),
        };
        Ok::<_, anyhow::Error>(session::agent_handshake(&mut stream, cfg, &kiosk.key).await?)
    };
    let mut session = tokio::time::timeout(kiosk.handshake_timeout, handshake)
        .await
        .map_err(|_| {
            anyhow!(
                "handshake not completed within {:?}",
                kiosk.handshake_timeout
            )
        })??;
    drop(pending);
    let identity = session.peer().clone();
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
        },
    };
    tracing::info!(%peer, operator = %operator.account, display_name = %operator.display_name,
        %fingerprint, permissions = ?operator.rights.permissions.names(), "direct session started");
    serve_session(
        &mut stream,
        &mut session,
        operator,
        &kiosk.settings,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    )
    .await;
    Ok(())
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

/// The operator of a session, as the agent knows them after the handshake.
#[derive(Debug, Clone)]
struct Operator {
    /// Account name, or the key fingerprint for a key-only kiosk operator.
    account: String,
    display_name: String,
    organisation: String,
    rights: Rights,
    fingerprint: String,
    /// End of the certificate's validity (none for key-only operators).
    certificate_expires: Option<u64>,
    /// How the agent knows them.
    verified_by: &'static str,
}

impl Operator {
    fn certified(cert: &CertBody, fingerprint: String) -> Self {
        Self {
            account: cert.operator.clone(),
            display_name: cert.display_name.clone(),
            organisation: cert.organisation.clone(),
            rights: Rights::from_certificate(cert),
            fingerprint,
            certificate_expires: Some(cert.not_after),
            verified_by: "your help desk's relay",
        }
    }
}

/// How this agent runs its sessions.
#[derive(Debug, Clone)]
struct SessionSettings {
    out: Output,
    share: ShareConfig,
    consent_timeout: Duration,
    /// LAN-only kiosk mode: no consent questions (the kiosk's configuration is the consent),
    /// no terminal input; the banner and hotkeys still work.
    unattended: bool,
}

/// Runs one established session to its end: tells the customer who is there and what they may
/// do, gets consent (attended mode), shares, and ends on a close from either side, the time
/// limit, or `shutdown`.
async fn serve_session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    session: &mut Session,
    operator: Operator,
    settings: &SessionSettings,
    shutdown: impl Future<Output = ()>,
) -> SessionEnd {
    let out = settings.out;
    let rights = operator.rights;
    out.event(
        json!({"event": "connected", "sas": session.sas(),
               "peer": {"role": "operator", "operator": operator.account, "display_name": operator.display_name,
                        "organisation": operator.organisation, "permissions": rights.permissions.names(),
                        "max_session_secs": rights.max_session.map_or(0, |d| d.as_secs()),
                        "fingerprint": operator.fingerprint, "certificate_expires": operator.certificate_expires}}),
        || format!(
            "Connected to {} ({}), verified by {}.\nThe operator may: {}\nVerification code: {}  (the operator sees the same code)\nPress Ctrl-C to end the session.",
            operator.display_name,
            if operator.organisation.is_empty() { "no organisation" } else { &operator.organisation },
            operator.verified_by,
            rights.describe(),
            session.sas()
        ),
    );
    if !rights.may_view() {
        // Nothing to share: end at once and say why, before any capture starts.
        tracing::warn!(operator = %operator.account, "operator may not view; ending the session");
        let (app, _to_peer, _from_peer) = AppChannels::pair(1);
        let end = session::run(
            stream,
            session,
            hello_message(),
            async { CloseReason::NotPermitted },
            app,
        )
        .await;
        out.event(
            json!({"event": "closed", "reason": end.reason(), "normal": end.is_normal()}),
            || format!("Session ended: {}", end.reason()),
        );
        return end;
    }

    let started = clock::now_unix();
    let (app, to_peer, from_peer) = AppChannels::pair(64);
    let (close_tx, close_rx) = oneshot::channel::<CloseReason>();
    let customer = Customer {
        out,
        operator: operator.display_name.clone(),
        organisation: operator.organisation.clone(),
        rights,
        share: settings.share,
        consent_timeout: settings.consent_timeout,
        unattended: settings.unattended,
    };
    // The customer's side runs beside the session pump: it asks for consent, starts and stops
    // sharing and control, and asks the pump to close when the customer ends the session.
    let controller = tokio::spawn(customer.run(from_peer, to_peer, close_tx));
    let end = session::run(
        stream,
        session,
        hello_message(),
        async {
            let limit = async {
                match rights.max_session {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown => if settings.unattended { CloseReason::Shutdown } else { CloseReason::EndedByCustomer },
                reason = close_rx => reason.unwrap_or(CloseReason::Shutdown),
                () = limit => {
                    tracing::info!("session time limit reached");
                    CloseReason::TimeLimit
                }
            }
        },
        app,
    )
    .await;
    // The session is over: the controller ends once the pump's channels close, after stopping
    // capture, releasing held input and taking the banner down.
    let used = controller.await.unwrap_or_default();
    out.event(
        json!({"event": "closed", "reason": end.reason(), "normal": end.is_normal()}),
        || format!("Session ended: {}", end.reason()),
    );
    let summary = Summary {
        operator: operator.display_name.clone(),
        organisation: operator.organisation.clone(),
        started,
        ended: clock::now_unix(),
        used,
        reason: end.reason(),
    };
    tracing::info!(operator = %operator.account, fingerprint = %operator.fingerprint,
        duration_secs = summary.duration_secs(), used = ?summary.used.names(), reason = %summary.reason,
        "session ended");
    out.event(summary.json(), || summary.text());
    end
}

/// Everything the customer's side of a session needs.
struct Customer {
    out: Output,
    operator: String,
    organisation: String,
    rights: Rights,
    share: ShareConfig,
    consent_timeout: Duration,
    unattended: bool,
}

/// Where sharing stands.
enum Control {
    /// The operator has no control and has not asked.
    None,
    /// The customer is being asked.
    Asked(Instant),
    /// The operator controls keyboard and mouse.
    Granted(InputControl),
}

impl Customer {
    fn who(&self) -> String {
        if self.organisation.is_empty() {
            self.operator.clone()
        } else {
            format!("{} ({})", self.operator, self.organisation)
        }
    }

    fn banner_text(&self, in_control: bool) -> IndicatorText {
        IndicatorText {
            operator: self.operator.clone(),
            organisation: self.organisation.clone(),
            in_control,
        }
    }

    /// Runs the customer's side until the session ends; returns what was used.
    async fn run(
        self,
        mut from_peer: mpsc::Receiver<Message>,
        to_peer: mpsc::Sender<Message>,
        close: oneshot::Sender<CloseReason>,
    ) -> Usage {
        let mut used = Usage::default();
        // An unattended kiosk has no one at a terminal to answer.
        let mut lines = if self.unattended {
            unbounded_channel().1
        } else {
            customer::stdin_lines()
        };
        let out = self.out;

        // 1. Viewing needs a yes; nothing is captured before it. On a LAN-only kiosk the
        // kiosk's configuration (who may connect) is the consent.
        let answer = if self.unattended {
            tracing::info!(operator = %self.operator, "unattended kiosk: sharing without a consent question");
            Some(Answer::Yes)
        } else {
            let _ = to_peer
                .send(Message::ConsentPending {
                    what: ConsentFor::Viewing,
                })
                .await;
            let secs = self.consent_timeout.as_secs();
            out.event(
            json!({"event": "consent_request", "what": "viewing", "timeout_secs": secs}),
            || {
                format!(
                    "\n{} wants to see your screen.\nAllow? Type y and Enter to allow, anything else to refuse ({secs} s to answer): ",
                    self.who()
                )
            },
        );
            let deadline = tokio::time::sleep(self.consent_timeout);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    line = lines.recv() => break match line {
                        Some(l) => Some(customer::parse_answer(&l)),
                        // No terminal to answer on: fail closed.
                        None => Some(Answer::No),
                    },
                    msg = from_peer.recv() => match msg {
                        // Nothing is shared yet, so nothing can be controlled either.
                        Some(Message::ControlRequest) => {
                            let _ = to_peer.send(Message::Control { granted: false }).await;
                        }
                        Some(_) => {}
                        // The session ended while asking.
                        None => return used,
                    },
                    () = &mut deadline => break None,
                }
            }
        };
        match answer {
            Some(Answer::Yes) => {}
            Some(Answer::No) => {
                out.event(
                    json!({"event": "consent", "what": "viewing", "allowed": false}),
                    || "You refused; nothing was shared.".into(),
                );
                let _ = close.send(CloseReason::DeclinedByCustomer);
                drain(from_peer).await;
                return used;
            }
            None => {
                out.event(
                    json!({"event": "consent", "what": "viewing", "allowed": false, "timed_out": true}),
                    || "\nNo answer; nothing was shared.".into(),
                );
                let _ = close.send(CloseReason::NoAnswerFromCustomer);
                drain(from_peer).await;
                return used;
            }
        }
        if self.unattended {
            out.event(
                json!({"event": "consent", "what": "viewing", "allowed": true, "by": "kiosk configuration"}),
                || "Unattended kiosk: sharing the screen (allowed by the kiosk's configuration).".into(),
            );
        } else {
            out.event(
                json!({"event": "consent", "what": "viewing", "allowed": true}),
                || "You allowed viewing.".into(),
            );
        }

        // 2. Share: the on-screen banner and hotkeys first, so that the very first picture
        // the operator gets shows the customer what they see; then capture.
        let (hotkey_tx, mut hotkeys) = unbounded_channel::<Hotkey>();
        let wanted = self.share.monitor;
        let indicator =
            match tokio::task::spawn_blocking(move || sightline_agent::capture::find(wanted)).await
            {
                Ok(Ok(m)) => {
                    let mut shown = Indicator::start(
                        m.x,
                        m.y,
                        m.width,
                        self.banner_text(false),
                        hotkey_tx.clone(),
                    );
                    if shown.is_err() {
                        // One more try: a display that is still starting up, a font server slow
                        // to answer.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        shown =
                            Indicator::start(m.x, m.y, m.width, self.banner_text(false), hotkey_tx);
                    }
                    shown.map_err(|e| e.to_string())
                }
                Ok(Err(e)) => Err(format!("cannot find the monitor: {e}")),
                Err(_) => Err("the monitor lookup failed".to_string()),
            };
        let indicator = match indicator {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "no on-screen indicator");
                out.event(json!({"event": "indicator", "shown": false, "message": e}), || {
                    format!("(No on-screen indicator: {e}. This terminal shows the session status.)")
                });
                if self.unattended {
                    // On a kiosk the banner is the only sign that the screen is shared: without
                    // it, nothing is shared.
                    tracing::error!("unattended kiosk without an on-screen indicator: not sharing");
                    let _ = close.send(CloseReason::Shutdown);
                    drain(from_peer).await;
                    return used;
                }
                None
            }
        };
        let share = match share::start(self.share, to_peer.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot share the screen");
                out.event(
                    json!({"event": "error", "message": format!("cannot share the screen: {e}")}),
                    || format!("Cannot share the screen: {e}"),
                );
                let _ = close.send(CloseReason::Shutdown);
                drop(indicator);
                drain(from_peer).await;
                return used;
            }
        };
        used.view = true;
        let since = sightline_net::cli::utc(clock::now_unix());
        out.event(
            json!({"event": "sharing", "monitor": share.monitor.index, "width": share.monitor.width, "height": share.monitor.height,
                   "indicator": indicator.is_some(), "encoder": share.encoder.name()}),
            || format!("Sharing your screen ({}x{}) with {} since {since}.", share.monitor.width, share.monitor.height, self.who()),
        );
        out.event(
            json!({"event": "status", "watching": true, "in_control": false}),
            || {
                format!(
                    "Status: {} is watching. Keys: {}.",
                    self.operator,
                    customer::keys_help(false)
                )
            },
        );

        // 3. The session: the operator's messages, the customer's keys.
        let mut gate = InputGate::new(&self.rights);
        let mut control = Control::None;
        let mut stdin_open = !self.unattended;
        let mut ungranted = 0u64;
        loop {
            let asked_at = match &control {
                Control::Asked(at) => Some(*at),
                _ => None,
            };
            let answer_due = async {
                match asked_at {
                    Some(at) => tokio::time::sleep_until((at + self.consent_timeout).into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = from_peer.recv() => match msg {
                    Some(Message::KeyframeRequest) => share.request_keyframe(),
                    Some(Message::VideoAck { seq }) => share.ack(seq),
                    // Deny by default: the certificate and the customer's grant decide.
                    Some(Message::Input(ev)) => match (gate.admit(ev), &control) {
                        (Some(ev), Control::Granted(c)) => c.inject(ev),
                        (Some(_), _) => {
                            ungranted += 1;
                            if ungranted.is_power_of_two() {
                                tracing::warn!(dropped = ungranted, "input without the customer's grant of control dropped");
                            }
                        }
                        (None, _) => {}
                    },
                    Some(Message::ControlRequest) => match control {
                        _ if !self.rights.may_control() => {
                            tracing::warn!("control requested by an operator without the control permission");
                            let _ = to_peer.send(Message::Control { granted: false }).await;
                        }
                        // Unattended: the kiosk's configuration answers for the customer.
                        Control::None if self.unattended => {
                            control = self.answer_control(true, &share, &to_peer, indicator.as_ref()).await;
                            used.control |= matches!(control, Control::Granted(_));
                        }
                        Control::None => {
                            control = Control::Asked(Instant::now());
                            let _ = to_peer.send(Message::ConsentPending { what: ConsentFor::Control }).await;
                            out.event(
                                json!({"event": "consent_request", "what": "control", "timeout_secs": self.consent_timeout.as_secs()}),
                                || format!("\n{} asks to control your keyboard and mouse.\nAllow? Type y and Enter to allow, anything else to refuse: ", self.operator),
                            );
                        }
                        // Already asked or granted: repeats change nothing.
                        Control::Asked(_) | Control::Granted(_) => {}
                    },
                    Some(other) => tracing::debug!(?other, "ignoring message"),
                    None => break,
                },
                line = lines.recv(), if stdin_open => {
                    let Some(line) = line else {
                        // No more terminal input: the hotkeys and Ctrl-C still work.
                        stdin_open = false;
                        continue;
                    };
                    if let Control::Asked(_) = control {
                        let allowed = customer::parse_answer(&line) == Answer::Yes;
                        control = self.answer_control(allowed, &share, &to_peer, indicator.as_ref()).await;
                        used.control |= matches!(control, Control::Granted(_));
                        continue;
                    }
                    match customer::parse_command(&line) {
                        Some(CustomerCommand::RevokeControl) => {
                            control = self.revoke(control, &to_peer, indicator.as_ref()).await;
                        }
                        Some(CustomerCommand::End) => {
                            let _ = close.send(CloseReason::EndedByCustomer);
                            break;
                        }
                        Some(CustomerCommand::Help) => {
                            let in_control = matches!(control, Control::Granted(_));
                            out.event(json!({"event": "help"}), || format!("Keys: {}.", customer::keys_help(in_control)));
                        }
                        None => {}
                    }
                }
                key = hotkeys.recv() => match key {
                    Some(Hotkey::RevokeControl) => {
                        control = self.revoke(control, &to_peer, indicator.as_ref()).await;
                    }
                    Some(Hotkey::EndSession) => {
                        let _ = close.send(CloseReason::EndedByCustomer);
                        break;
                    }
                    None => {}
                },
                () = answer_due => {
                    out.event(json!({"event": "consent", "what": "control", "allowed": false, "timed_out": true}), || {
                        "\nNo answer; the operator did not get control.".into()
                    });
                    control = Control::None;
                    let _ = to_peer.send(Message::Control { granted: false }).await;
                }
            }
        }
        // 4. The end: stop capture, release every held key and button, take the banner down.
        drop(share);
        if let Control::Granted(c) = control {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        drop(indicator);
        drain(from_peer).await;
        used
    }

    /// The customer answered a control request.
    async fn answer_control(
        &self,
        allowed: bool,
        share: &share::ShareHandle,
        to_peer: &mpsc::Sender<Message>,
        indicator: Option<&Indicator>,
    ) -> Control {
        let out = self.out;
        if !allowed {
            out.event(
                json!({"event": "consent", "what": "control", "allowed": false}),
                || "You refused control.".into(),
            );
            let _ = to_peer.send(Message::Control { granted: false }).await;
            return Control::None;
        }
        let monitor = share.monitor.clone();
        match tokio::task::spawn_blocking(move || InputControl::start(monitor)).await {
            Ok(Ok(c)) => {
                let _ = to_peer.send(Message::Control { granted: true }).await;
                if let Some(i) = indicator {
                    i.set_text(self.banner_text(true));
                }
                out.event(
                    json!({"event": "consent", "what": "control", "allowed": true}),
                    || "You allowed control.".into(),
                );
                out.event(
                    json!({"event": "status", "watching": true, "in_control": true}),
                    || {
                        format!(
                            "Status: {} controls your keyboard and mouse. Keys: {}.",
                            self.operator,
                            customer::keys_help(true)
                        )
                    },
                );
                Control::Granted(c)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot inject input");
                out.event(
                    json!({"event": "error", "message": format!("cannot give control: {e}")}),
                    || format!("Cannot give control: {e}"),
                );
                let _ = to_peer.send(Message::Control { granted: false }).await;
                Control::None
            }
            Err(_) => {
                let _ = to_peer.send(Message::Control { granted: false }).await;
                Control::None
            }
        }
    }

    /// The customer takes control back (or cancels a pending request).
    async fn revoke(
        &self,
        control: Control,
        to_peer: &mpsc::Sender<Message>,
        indicator: Option<&Indicator>,
    ) -> Control {
        let out = self.out;
        match control {
            Control::Granted(c) => {
                // Input stops at once: the injector thread releases every held key and button
                // and ends before the operator is told.
                let _ = tokio::task::spawn_blocking(move || c.stop()).await;
                let _ = to_peer.send(Message::Control { granted: false }).await;
                if let Some(i) = indicator {
                    i.set_text(self.banner_text(false));
                }
                out.event(
                    json!({"event": "control", "granted": false, "by": "customer"}),
                    || "You took back control.".into(),
                );
                out.event(
                    json!({"event": "status", "watching": true, "in_control": false}),
                    || {
                        format!(
                            "Status: {} is watching. Keys: {}.",
                            self.operator,
                            customer::keys_help(false)
                        )
                    },
                );
            }
            Control::Asked(_) => {
                let _ = to_peer.send(Message::Control { granted: false }).await;
                out.event(
                    json!({"event": "consent", "what": "control", "allowed": false}),
                    || "You refused control.".into(),
                );
            }
            Control::None => {}
        }
        Control::None
    }
}

/// Waits for the session pump to finish (its channel closes).
async fn drain(mut from_peer: mpsc::Receiver<Message>) {
    while from_peer.recv().await.is_some() {}
}

//! The viewer's session client: logs in, gets a code, waits for the customer, runs the
//! end-to-end handshake and the session, all on its own thread with its own runtime. The UI
//! (or the headless command) talks to it through a bounded command queue and an event queue,
//! and takes decoded pictures from a single newest-frame slot: the UI thread only draws.

use crate::agent_key::{AgentKeyCheck, AgentKeyReport, KeyAnswer, KeyCheck};
use crate::certstore::{self, StoredCert};
use crate::decoder::{DecoderThread, LatestFrame};
use crate::direct::{self, DirectAddress, DirectConnection, FirstWord, Offer};
use crate::dispatch::{dispatch, RecordingOptions};
use crate::recording::Recording;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::code::SessionCode;
use sightline_core::e2e::{E2eConfig, Session as E2eSession, Trust};
use sightline_core::identity::{
    Fingerprint, PrivateIdentity, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS,
};
use sightline_core::messages::{
    CloseReason, ConsentFor, CursorShape, InputEvent, Message, PauseReason, WithdrawReason,
};
use sightline_core::relay_proto::Secret;
use sightline_net::dial::{Dialed, Relay};
use sightline_net::oidc_redirect::RedirectListener;
use sightline_net::resume::{self, LinkEvent, RelayLink};
use sightline_net::session::{self, AppChannels, SessionEnd};
use sightline_net::stream::{BoxIo, FramedStream};
use sightline_net::{clock, keystore, LoginGrant, RelayClient};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Everything needed to start an operator session.
#[derive(Debug, Clone)]
pub struct SessionParams {
    /// The relay: its routes as the operator gave them, and how to dial them.
    pub relay: Relay,
    /// Pinned relay key fingerprint.
    pub relay_key: Fingerprint,
    /// Operator account.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Second factor: the code from the operator's authenticator app or a recovery code;
    /// `None` for accounts without two-factor login.
    pub second_factor: Option<Secret>,
    /// Fail right after login, before asking for a session code, unless the certificate
    /// allows control (the headless session with an input script needs it).
    pub require_control: bool,
    /// Directory of the operator's identity key (and of the stored certificate).
    pub data_dir: PathBuf,
    /// Connect straight to this LAN-only agent after the login instead of asking the relay
    /// for a session code.
    pub direct: Option<DirectAddress>,
    /// How that agent's key is checked against the known hosts.
    pub agent_key: AgentKeyCheck,
    /// Record the session where the policy leaves it to the operator.
    pub record: bool,
    /// Sign in through this OpenID Connect provider of the relay instead of `user` and
    /// `password`.
    pub oidc: Option<OidcLogin>,
}

/// A sign-in through one of the relay's OpenID Connect providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLogin {
    /// The relay's `[[oidc]]` name.
    pub provider: String,
    /// In this machine's browser (authorization code with PKCE, loopback redirect) rather
    /// than with the device grant (a page and a code, in any browser).
    pub in_browser: bool,
}

/// A direct connection to a LAN-only agent with the certificate stored after an earlier relay
/// login (no relay involved).
#[derive(Debug, Clone)]
pub struct DirectParams {
    /// The agent's address.
    pub address: DirectAddress,
    /// The stored certificate and the relay CA key it chains to.
    pub stored: Box<StoredCert>,
    /// As in [`SessionParams::require_control`].
    pub require_control: bool,
    /// Directory of the operator's identity key (and of the known hosts).
    pub data_dir: PathBuf,
    /// How the agent's key is checked against the known hosts.
    pub agent_key: AgentKeyCheck,
}

/// How a session starts.
// One per session: boxing the larger variant would save nothing worth an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Start {
    /// Log in to the relay (storing the certificate), then a session code, or a direct
    /// connection when [`SessionParams::direct`] is set.
    Relay(SessionParams),
    /// Straight to a LAN-only agent with the stored certificate.
    Direct(DirectParams),
}

impl Start {
    /// Fail right after the certificate is known unless it allows control.
    pub fn require_control(&mut self, require: bool) {
        match self {
            Start::Relay(p) => p.require_control |= require,
            Start::Direct(p) => p.require_control |= require,
        }
    }

    /// Whether the session fails unless the certificate allows control.
    pub fn requires_control(&self) -> bool {
        match self {
            Start::Relay(p) => p.require_control,
            Start::Direct(p) => p.require_control,
        }
    }
}

impl From<SessionParams> for Start {
    fn from(p: SessionParams) -> Self {
        Start::Relay(p)
    }
}

impl From<DirectParams> for Start {
    fn from(p: DirectParams) -> Self {
        Start::Direct(p)
    }
}

/// What the relay CA's certificate lets this operator do, from the verified certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorRights {
    /// Account name.
    pub operator: String,
    /// What the help desk lets this operator do (the agent enforces it).
    pub permissions: Permissions,
    /// Longest session, seconds, counted from the connection (0: no limit beyond the
    /// certificate's validity; the agent ends the session when it is reached).
    pub max_session_secs: u64,
    /// End of the certificate's validity, Unix seconds.
    pub certificate_expires: u64,
}

impl OperatorRights {
    /// The rights in a verified certificate body.
    pub fn from_body(body: &CertBody) -> Self {
        Self {
            operator: body.operator.clone(),
            permissions: body.permissions,
            max_session_secs: body.max_session_secs,
            certificate_expires: body.not_after,
        }
    }

    /// Whether the operator may send keyboard and mouse input at all (the customer must
    /// still grant control in the session).
    pub fn may_control(&self) -> bool {
        self.permissions.allows(Permissions::CONTROL)
    }

    /// Permission names, for JSON and display (`["view", "control"]`).
    pub fn permission_names(&self) -> Vec<&'static str> {
        self.permissions.names()
    }

    /// One line for people: `view, control; sessions up to 30 min`.
    pub fn summary(&self) -> String {
        let names = self.permission_names();
        let names = if names.is_empty() {
            "no permissions".to_string()
        } else {
            names.join(", ")
        };
        match self.max_session_secs {
            0 => format!("{names}; no session time limit"),
            s if s % 60 == 0 => format!("{names}; sessions up to {} min", s / 60),
            s => format!("{names}; sessions up to {s} s"),
        }
    }
}

/// Refused when a session needs control and the certificate does not allow it.
pub const VIEW_ONLY_MESSAGE: &str = "your account may not control customers' machines: view only";

/// Shown while the customer is asked to allow viewing and no picture has come yet.
pub const WAITING_FOR_VIEWING: &str = "Waiting for the customer to allow viewing…";

/// Shown while the customer is asked to allow control.
pub const WAITING_FOR_CONTROL: &str = "Waiting for the customer to allow control…";

/// The operator-facing line for a [`ClientEvent::ConsentPending`].
pub fn consent_pending_text(what: ConsentFor) -> &'static str {
    match what {
        ConsentFor::Viewing => WAITING_FOR_VIEWING,
        ConsentFor::Control => WAITING_FOR_CONTROL,
    }
}

/// The JSON name of what the customer is asked for: `viewing` or `control`.
pub fn consent_name(what: ConsentFor) -> &'static str {
    match what {
        ConsentFor::Viewing => "viewing",
        ConsentFor::Control => "control",
    }
}

/// Checks the certificate's rights against what the session needs.
pub fn check_rights(rights: &OperatorRights, require_control: bool) -> Result<(), String> {
    if require_control && !rights.may_control() {
        return Err(VIEW_ONLY_MESSAGE.into());
    }
    Ok(())
}

/// Rolling statistics, reported about once a second while video flows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// Decoded pictures per second.
    pub fps: f64,
    /// Received video bit rate, kbit/s.
    pub kbps: f64,
    /// Mean capture-to-decoded latency, milliseconds.
    pub latency_ms: f64,
}

/// The agent's congestion control, as it last reported (about once a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendRate {
    /// The bitrate the agent's encoder aims at, kbit/s.
    pub target_kbps: u32,
    /// What the agent sent over the last second, kbit/s.
    pub send_kbps: u32,
    /// Pictures the agent sent over the last second.
    pub fps: u32,
    /// Round trip the agent measures, milliseconds.
    pub rtt_ms: u32,
    /// Part of it spent in queues, milliseconds.
    pub queue_ms: u32,
}

/// What the client reports.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// Progress before the session ("connecting", "logging in").
    Status(String),
    /// The session is recorded for the help desk's auditors (`required`: by the policy,
    /// else because the operator chose to).
    Recording {
        /// Whether the policy requires it.
        required: bool,
    },
    /// The code to read to the customer.
    Code {
        /// The code.
        code: SessionCode,
        /// Expiry, Unix seconds.
        expires_at: u64,
    },
    /// Connected to the relay over this route (before logging in).
    Route(Dialed),
    /// Where to sign in at the identity provider (an OpenID Connect login).
    OidcSignIn(sightline_net::relay_client::OidcSignIn),
    /// The identity provider's page for a sign-in in the browser, and whether a browser was
    /// started on it (else the operator opens it).
    OidcBrowser {
        /// The authorization page.
        url: String,
        /// Why no browser could be started, if none was.
        not_opened: Option<String>,
    },
    /// Logged in; the certificate is verified against the pinned relay CA.
    LoggedIn(OperatorRights),
    /// Connecting straight to a LAN-only agent (instead of a session code).
    Direct {
        /// The agent's address, `host:port`.
        address: String,
        /// What the certificate offered lets this operator do.
        rights: OperatorRights,
    },
    /// First connection to a LAN-only agent: its key is not in the known hosts. The session
    /// waits (at most [`crate::agent_key::PROMPT_TIMEOUT`]) for the operator's
    /// [`ClientCommand::AgentKey`]; nothing of it is shown meanwhile.
    AgentKeyPrompt {
        /// The agent's address, `host:port`.
        address: String,
        /// The key it presented in the handshake.
        fingerprint: Fingerprint,
    },
    /// A LAN-only agent's key was checked against the known hosts (accepted or not; a
    /// refusal is followed by [`ClientEvent::Failed`]).
    AgentKey(AgentKeyReport),
    /// The customer's agent is connected and verified.
    Connected {
        /// Fingerprint of the agent's key.
        peer_fingerprint: String,
        /// Short authentication string.
        sas: String,
        /// What this operator may do in the session (from the certificate).
        rights: OperatorRights,
    },
    /// The remote screen's size.
    VideoConfig {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A picture was decoded (it is in the newest-frame slot).
    FrameDecoded {
        /// Sequence number.
        seq: u64,
        /// Encoded size.
        bytes: usize,
        /// Keyframe or not.
        keyframe: bool,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Capture to decoded, milliseconds.
        latency_ms: f64,
    },
    /// The remote pointer.
    Cursor {
        /// Normalised x.
        x: f32,
        /// Normalised y.
        y: f32,
        /// On the shared screen.
        visible: bool,
        /// New shape, when changed.
        shape: Option<CursorShape>,
    },
    /// The customer is being asked to allow something; nothing of it is shared until they
    /// say yes.
    ConsentPending(ConsentFor),
    /// The agent's latest word on control that this viewer believes: granted (only ever as
    /// the answer to this viewer's own request), declined, revoked by the customer (`false`
    /// after `true`), or withdrawn by the agent; see [`crate::consent::ControlChange`].
    Control {
        /// Whether input is allowed now.
        granted: bool,
        /// Why the agent, not the customer, took control away or refused it.
        withdrawn: Option<WithdrawReason>,
    },
    /// The connection through the relay broke; the session is being resumed (no pictures, no
    /// control) and ends if it is not back within `within_secs`.
    Reconnecting {
        /// Why the connection counts as lost.
        reason: String,
        /// How long the session waits for it.
        within_secs: u64,
    },
    /// The session goes on over a new connection: the same agent, the same verification
    /// code, fresh keys.
    Reconnected {
        /// The verification code (unchanged).
        sas: String,
    },
    /// The agent paused sharing (no pictures, no control) and why.
    SharingPaused(PauseReason),
    /// Sharing goes on after a pause; control must be asked for again.
    SharingResumed,
    /// Something the operator should know that does not end the session (a control request
    /// refused before it was sent).
    Notice(String),
    /// Statistics.
    Stats(Stats),
    /// The agent's congestion control changed or reported its rate.
    SendRate(SendRate),
    /// The session ended.
    Closed {
        /// Why, as in the JSON `closed` event (`ended by customer`, `abnormal end: …`).
        reason: String,
        /// Whether an explicit close was exchanged.
        normal: bool,
        /// The reason in the explicit close; `None` for an abnormal end or when the session
        /// was cancelled before the customer joined.
        close: Option<CloseReason>,
    },
    /// Login or connection failed before the session.
    Failed(String),
}

/// What the UI asks of the client.
#[derive(Debug, Clone)]
pub enum ClientCommand {
    /// Operator input (dropped unless control is granted).
    Input(InputEvent),
    /// Ask the customer for control of keyboard and mouse. Refused with a
    /// [`ClientEvent::Notice`], and nothing sent, when the certificate does not allow control;
    /// held back until the customer has allowed viewing (the agent asks one thing at a time).
    RequestControl,
    /// The answer to [`ClientEvent::AgentKeyPrompt`].
    AgentKey(KeyAnswer),
    /// End the session (or stop waiting for the customer).
    End,
}

/// The UI's handle on a running client.
#[derive(Debug)]
pub struct ClientHandle {
    commands: mpsc::Sender<ClientCommand>,
    events: std_mpsc::Receiver<ClientEvent>,
    /// The newest decoded picture.
    pub frames: Arc<LatestFrame>,
}

impl ClientHandle {
    /// Queues a command without blocking; false when the queue is full or the client ended.
    pub fn send(&self, cmd: ClientCommand) -> bool {
        self.commands.try_send(cmd).is_ok()
    }

    /// Events that arrived since the last call.
    pub fn poll_events(&self) -> Vec<ClientEvent> {
        self.events.try_iter().collect()
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_event(&self, timeout: Duration) -> Option<ClientEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// A sender for commands usable from other threads (e.g. a signal handler).
    pub fn command_sender(&self) -> mpsc::Sender<ClientCommand> {
        self.commands.clone()
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        // Never blocks: the client thread ends the session on its own.
        let _ = self.commands.try_send(ClientCommand::End);
    }
}

/// Starts the client thread. `notify` is called whenever there is something new to show.
pub fn spawn(
    start: impl Into<Start>,
    notify: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<ClientHandle> {
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = std_mpsc::channel();
    let start = start.into();
    let frames = Arc::new(LatestFrame::default());
    let latest = frames.clone();
    std::thread::Builder::new()
        .name("session-client".into())
        .spawn(move || {
            let events = Events { tx: ev_tx, notify };
            let rt = match sightline_net::cli::runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    return events.emit(ClientEvent::Failed(format!("cannot start runtime: {e}")))
                }
            };
            rt.block_on(async move {
                if let Err(message) = drive(start, cmd_rx, &events, latest).await {
                    events.emit(ClientEvent::Failed(message));
                }
            });
        })?;
    Ok(ClientHandle {
        commands: cmd_tx,
        events: ev_rx,
        frames,
    })
}

/// Where the client's events go: the UI's queue, and a nudge so that it looks.
#[derive(Clone)]
pub(crate) struct Events {
    pub(crate) tx: std_mpsc::Sender<ClientEvent>,
    pub(crate) notify: Arc<dyn Fn() + Send + Sync>,
}

impl Events {
    pub(crate) fn emit(&self, e: ClientEvent) {
        let _ = self.tx.send(e);
        (self.notify)();
    }
}

async fn load_key(dir: PathBuf) -> Result<PrivateIdentity, String> {
    let path = dir.join("identity-key.pem");
    let (key, created) = tokio::task::spawn_blocking(move || {
        keystore::load_or_create_key(&path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)
    })
    .await
    .map_err(|e| format!("key worker failed: {e}"))?
    .map_err(|e| e.to_string())?;
    if created {
        tracing::info!(fingerprint = %key.public().fingerprint(), "created identity key");
    }
    Ok(key)
}

async fn login(
    params: &SessionParams,
    key: &PrivateIdentity,
    events: &Events,
) -> Result<(RelayClient, LoginGrant), String> {
    events.emit(ClientEvent::Status(format!(
        "connecting to {}",
        params.relay
    )));
    let mut client = RelayClient::connect_to(&params.relay, params.relay_key)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(dialed) = client.dialed() {
        events.emit(ClientEvent::Route(dialed.clone()));
    }
    events.emit(ClientEvent::Status("logging in".into()));
    // The client checks the grant against the pin: the authority's root is the pinned key,
    // the certificate is its issuing key's and is over this key. Only what it signed decides
    // what the window offers.
    if let Some(oidc) = &params.oidc {
        let grant = oidc_login(&mut client, oidc, key, events).await?;
        return Ok((client, grant));
    }
    let grant = client
        .login(
            &params.user,
            params.password.clone(),
            params.second_factor.clone(),
            key,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((client, grant))
}

/// The sign-in through a provider: the device grant, or this machine's browser, which the
/// provider sends back to a loopback listener.
async fn oidc_login(
    client: &mut RelayClient,
    oidc: &OidcLogin,
    key: &PrivateIdentity,
    events: &Events,
) -> Result<LoginGrant, String> {
    let provider = &oidc.provider;
    if !oidc.in_browser {
        return client
            .oidc_login(provider, key, |sign_in| {
                events.emit(ClientEvent::OidcSignIn(sign_in));
            })
            .await
            .map_err(|e| e.to_string());
    }
    let redirect = RedirectListener::bind()
        .await
        .map_err(|e| format!("cannot listen for the browser's return on 127.0.0.1: {e}"))?;
    client
        .oidc_browser_login(provider, key, redirect, |url| {
            let not_opened = webbrowser::open(&url).err().map(|e| e.to_string());
            events.emit(ClientEvent::OidcBrowser { url, not_opened });
        })
        .await
        .map_err(|e| e.to_string())
}

async fn drive(
    start: Start,
    commands: mpsc::Receiver<ClientCommand>,
    events: &Events,
    latest: Arc<LatestFrame>,
) -> Result<(), String> {
    match start {
        Start::Relay(params) => {
            let key = load_key(params.data_dir.clone()).await?;
            let (client, grant) = login(&params, &key, events).await?;
            store_certificate(&params.data_dir, &grant, events).await;
            let rights = OperatorRights::from_body(&grant.body);
            let grant_body = grant.body.clone();
            let LoginGrant {
                certificate: cert,
                authority,
                revocations,
                ..
            } = grant;
            let offer = Offer {
                authority,
                revocations: Some(revocations),
            };
            events.emit(ClientEvent::LoggedIn(rights.clone()));
            check_rights(&rights, params.require_control)?;
            // Before any code is handed out: a viewer that cannot record a session the help
            // desk requires recorded does not start one.
            let plan = crate::recording::Plan::from_certificate(&grant_body, params.record)?;
            let settled = Settled {
                key: &key,
                rights,
                commands,
                events,
                latest,
            };
            match params.direct {
                Some(address) => {
                    refuse_unrecorded(&grant_body)?;
                    // The relay's part is done: the certificate is all a direct connection needs.
                    drop(client);
                    let agent_key = (params.agent_key, params.data_dir.as_path());
                    through_lan(settled, &address, cert, &offer, agent_key).await
                }
                None => {
                    let relay = (params.relay.clone(), params.relay_key);
                    let recorded = Recorded {
                        plan,
                        body: grant_body,
                    };
                    through_relay(settled, client, cert, relay, recorded).await
                }
            }
        }
        Start::Direct(p) => {
            let key = load_key(p.data_dir.clone()).await?;
            // Checked again now: the certificate may have expired since it was picked.
            let body = p
                .stored
                .authority
                .verify_operator(&p.stored.cert, clock::now_unix())
                .map_err(|e| format!("the stored operator certificate cannot be used: {e}"))?;
            if !body.key.ct_eq(&key.public().fingerprint()) {
                return Err(
                    "the stored operator certificate was issued for another identity key".into(),
                );
            }
            let rights = OperatorRights::from_body(&body);
            check_rights(&rights, p.require_control)?;
            refuse_unrecorded(&body)?;
            let StoredCert {
                cert,
                authority,
                revocations,
            } = *p.stored;
            let offer = Offer {
                authority,
                revocations,
            };
            let settled = Settled {
                key: &key,
                rights,
                commands,
                events,
                latest,
            };
            through_lan(
                settled,
                &p.address,
                cert,
                &offer,
                (p.agent_key, &p.data_dir),
            )
            .await
        }
    }
}

/// A direct connection has no relay to hand a recording to: refused when the help desk
/// requires recording.
fn refuse_unrecorded(body: &CertBody) -> Result<(), String> {
    if body.recording.mode == sightline_core::cert::RecordingMode::Required {
        return Err(
            "the help desk requires every session to be recorded, and a direct \
                    connection to a LAN-only agent cannot be: connect through the relay"
                .into(),
        );
    }
    Ok(())
}

/// What a session through the relay has that a direct one has not.
struct Relayed {
    /// How to come back after a broken connection.
    link: RelayLink,
    /// Where the agent's signed events go.
    uplink: crate::uplink::Target,
    /// The recording, and whether the policy requires it.
    recording: Option<(Recording, bool)>,
}

/// A relayed session's recording plan and the certificate it comes from.
struct Recorded {
    plan: Option<crate::recording::Plan>,
    body: CertBody,
}

/// What every session needs once the certificate is settled.
struct Settled<'a> {
    key: &'a PrivateIdentity,
    rights: OperatorRights,
    commands: mpsc::Receiver<ClientCommand>,
    events: &'a Events,
    latest: Arc<LatestFrame>,
}

/// Stores the certificate, authority and revocation list of a relay login for later direct
/// connections; a failure is reported, not fatal (this session does not need the stored copy).
async fn store_certificate(dir: &Path, grant: &LoginGrant, events: &Events) {
    let (dir, grant) = (dir.to_path_buf(), grant.clone());
    let save = move || {
        certstore::save(
            &dir,
            &grant.certificate,
            &grant.authority,
            &grant.revocations,
        )
    };
    let message = match tokio::task::spawn_blocking(save).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("worker failed: {e}"),
    };
    tracing::warn!(error = %message, "cannot store the operator certificate");
    events.emit(ClientEvent::Notice(format!(
        "cannot store the operator certificate for direct connections: {message}"
    )));
}

/// The relay's way: a code for the customer, pairing, then the session through the relay.
async fn through_relay(
    mut s: Settled<'_>,
    mut client: RelayClient,
    cert: OperatorCert,
    relay: (Relay, Fingerprint),
    recorded: Recorded,
) -> Result<(), String> {
    let events = s.events;
    let created = client.create_session().await.map_err(|e| e.to_string())?;
    events.emit(ClientEvent::Code {
        code: created.code,
        expires_at: created.expires_at,
    });

    let paired = tokio::select! {
        r = client.wait_pairing() => r.map_err(|e| e.to_string())?,
        _ = wait_for_end(&mut s.commands) => {
            events.emit(ClientEvent::Closed { reason: "cancelled before the customer joined".into(), normal: true, close: None });
            return Ok(());
        }
    };
    let mut stream = paired.stream;
    let session_id = paired.session_id;
    let link = RelayLink {
        relay: relay.0,
        pin: relay.1,
        session_id,
        token: paired.resume_token,
    };
    let cfg = E2eConfig {
        session_id,
        seed: clock::seed(),
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    };
    let uplink = crate::uplink::Target {
        relay: link.relay.clone(),
        pin: link.pin,
        session_id,
        certificate: cert.clone(),
        key: s.key.clone(),
    };
    let session = session::operator_handshake(&mut stream, cfg, s.key, cert)
        .await
        .map_err(|e| e.to_string())?;
    let recording = match recorded.plan {
        Some(plan) => {
            let meta = recording_meta(&recorded.body, &link, &session);
            let required = plan.required;
            match crate::recording::start(plan, meta, uplink.clone()) {
                Ok(r) => Some((r, required)),
                Err(e) if required => {
                    // Nothing was shown yet: the session ends before it starts, and the agent
                    // hears why.
                    let mut session = session;
                    let (app, _to_peer, _from_peer) = AppChannels::pair(1);
                    let hello = Message::Hello {
                        software: format!("sightline-viewer/{}", env!("CARGO_PKG_VERSION")),
                        capabilities: vec!["av1".into()],
                    };
                    let why = async { CloseReason::RecordingFailed };
                    let _ = session::run(&mut stream, &mut session, hello, why, app).await;
                    return Err(format!("the help desk requires recording, and {e}"));
                }
                Err(e) => {
                    events.emit(ClientEvent::Notice(format!(
                        "the session is not recorded: {e}"
                    )));
                    None
                }
            }
        }
        None => None,
    };
    hold(
        s,
        stream,
        session,
        Vec::new(),
        Some(Relayed {
            link,
            uplink,
            recording,
        }),
    )
    .await
}

/// What a recording says about its session.
fn recording_meta(
    body: &CertBody,
    link: &RelayLink,
    session: &E2eSession,
) -> sightline_recording::Meta {
    sightline_recording::Meta {
        session_id: link.session_id,
        operator: body.operator.clone(),
        display_name: body.display_name.clone(),
        organisation: body.organisation.clone(),
        relay: link.relay.to_string(),
        agent_key_spki: session.peer().public_key.clone(),
        started_unix_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0),
        include_input: body.recording.include_input,
        software: format!("sightline-viewer/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// Straight to a LAN-only agent: TCP, preamble, the same handshake, the agent's key checked
/// against the known hosts in `agent_key`'s directory, then the same session.
async fn through_lan(
    mut s: Settled<'_>,
    address: &DirectAddress,
    cert: OperatorCert,
    offer: &Offer,
    agent_key: (AgentKeyCheck, &Path),
) -> Result<(), String> {
    let events = s.events;
    let (check, dir) = agent_key;
    events.emit(ClientEvent::Direct {
        address: address.to_string(),
        rights: s.rights.clone(),
    });
    // Read first: a loose or damaged known-hosts file stops here, before any connection.
    let stored = crate::agent_key::stored_key(dir, address).await?;
    let cancelled = || ClientEvent::Closed {
        reason: "cancelled before the agent answered".into(),
        normal: true,
        close: None,
    };
    let handshaken = tokio::select! {
        r = direct::handshake(address, s.key, cert, offer) => r.map_err(|e| e.to_string())?,
        _ = wait_for_end(&mut s.commands) => {
            events.emit(cancelled());
            return Ok(());
        }
    };
    // Before anything of the session is read or shown.
    let key_check = KeyCheck {
        address,
        stored,
        check,
        dir,
        events,
    };
    if let Err(refusal) = key_check.run(handshaken.agent_key(), &mut s.commands).await {
        handshaken.refuse().await;
        return Err(refusal);
    }
    let conn = tokio::select! {
        r = handshaken.accept() => r.map_err(|e| e.to_string())?,
        _ = wait_for_end(&mut s.commands) => {
            events.emit(cancelled());
            return Ok(());
        }
    };
    let DirectConnection {
        stream,
        session,
        first,
    } = conn;
    let pending = match first {
        FirstWord::Accepted(pending) => pending,
        FirstWord::Silent => Vec::new(),
        FirstWord::Closed(reason) => {
            events.emit(connected_event(&session, &s.rights));
            events.emit(ClientEvent::Closed {
                reason: reason.to_string(),
                normal: true,
                close: Some(reason),
            });
            return Ok(());
        }
    };
    // A LAN connection has no relay to come back through: the session ends with it.
    hold(s, stream.boxed(), session, pending, None).await
}

fn connected_event(session: &E2eSession, rights: &OperatorRights) -> ClientEvent {
    ClientEvent::Connected {
        peer_fingerprint: session.peer().fingerprint.to_string(),
        sas: session.sas().to_string(),
        rights: rights.clone(),
    }
}

/// Runs an established session until it ends: `pending` are application messages the
/// agent already sent. A session through the relay (`relay`) is resumed when its connection
/// breaks.
/// How long the dispatcher may take, once the session ended, to handle what arrived last.
const DRAIN_AT_END: Duration = Duration::from_secs(2);

async fn hold(
    s: Settled<'_>,
    mut stream: FramedStream<BoxIo>,
    mut session: E2eSession,
    pending: Vec<Message>,
    relay: Option<Relayed>,
) -> Result<(), String> {
    let (relay, uplink, recording) = match relay {
        Some(r) => (
            Some(r.link),
            Some(crate::uplink::spawn(r.uplink)),
            r.recording,
        ),
        None => (None, None, None),
    };
    let recorded = recording.as_ref().map(|r| r.1);
    let (recording, rec_end) = match recording {
        Some((r, required)) => {
            let Recording { sink, failed, done } = r;
            let end_sink = sink.clone();
            let options = RecordingOptions {
                sink,
                failed,
                required,
            };
            (Some(options), Some((end_sink, done)))
        }
        None => (None, None),
    };
    let (uplink_tx, uplink_task) = uplink.unzip();
    let Settled {
        rights,
        commands,
        events,
        latest,
        ..
    } = s;
    events.emit(connected_event(&session, &rights));
    if let Some(required) = recorded {
        events.emit(ClientEvent::Recording { required });
    }

    let (app, to_peer, from_peer) = AppChannels::pair(64);
    for msg in pending {
        if app.incoming.try_send(msg).is_err() {
            tracing::warn!("dropping an early message from the agent");
        }
    }
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let notify = events.notify.clone();
    let decoder = DecoderThread::spawn(latest, report_tx, notify)
        .map_err(|e| format!("cannot start the decoder thread: {e}"))?;
    // Ask for a keyframe straight away: the agent may have started before we were ready.
    let _ = to_peer.send(Message::KeyframeRequest).await;

    let hello = Message::Hello {
        software: format!("sightline-viewer/{}", env!("CARGO_PKG_VERSION")),
        capabilities: vec!["av1".into()],
    };
    let (link_tx, link_rx) = mpsc::channel(8);
    let sas = session.sas().to_string();
    let keyframes = to_peer.clone();
    let pump = async {
        match relay {
            Some(relay) => {
                let close = std::future::pending();
                let pump =
                    resume::run(&mut stream, &mut session, hello, close, app, relay, link_tx);
                Box::pin(pump).await
            }
            None => {
                session::run(
                    &mut stream,
                    &mut session,
                    hello,
                    std::future::pending(),
                    app,
                )
                .await
            }
        }
    };
    let pump = async {
        // The link's news ends with the pump.
        tokio::join!(pump, tell_link(events, link_rx, keyframes, sas)).0
    };
    let may_control = rights.may_control();
    let dispatch = dispatch(
        commands,
        from_peer,
        report_rx,
        to_peer,
        decoder,
        events,
        crate::dispatch::SessionOptions {
            may_control,
            uplink: uplink_tx,
            recording,
        },
    );
    tokio::pin!(pump);
    tokio::pin!(dispatch);
    let end = tokio::select! {
        end = &mut pump => {
            // What the agent sent last (its final signed events) is still to be handled: the
            // dispatcher returns once the session's channel is drained.
            let _ = tokio::time::timeout(DRAIN_AT_END, &mut dispatch).await;
            end
        }
        // The dispatcher returns when the UI is gone, after queueing a close: let the pump
        // send it.
        _ = &mut dispatch => pump.await,
    };
    // The dispatcher is gone, and with it the uplink's sender: the last events go now.
    if let Some(task) = uplink_task {
        if tokio::time::timeout(crate::uplink::FLUSH_AT_END, task)
            .await
            .is_err()
        {
            tracing::warn!("the last session events did not reach the relay in time");
        }
    }
    // The recording's last word, then the rest of it goes to the relay.
    if let Some((sink, done)) = rec_end {
        sink.end(end.reason()).await;
        drop(sink);
        if tokio::time::timeout(crate::recording::FLUSH_AT_END, done)
            .await
            .is_err()
        {
            tracing::warn!("the end of the recording did not reach the relay in time");
            events.emit(ClientEvent::Notice(
                "the end of the session's recording did not reach the relay in time".into(),
            ));
        }
    }
    let close = match &end {
        SessionEnd::PeerClosed(r) | SessionEnd::LocalClosed(r) => Some(*r),
        SessionEnd::Abnormal(_) => None,
    };
    events.emit(ClientEvent::Closed {
        reason: end.reason(),
        normal: end.is_normal(),
        close,
    });
    Ok(())
}

/// Tells the UI about the connection; asks for a fresh picture once the session is resumed.
async fn tell_link(
    events: &Events,
    mut link: mpsc::Receiver<LinkEvent>,
    to_peer: mpsc::Sender<Message>,
    sas: String,
) {
    while let Some(event) = link.recv().await {
        match event {
            LinkEvent::Reconnecting { why, within } => events.emit(ClientEvent::Reconnecting {
                reason: why,
                within_secs: within.as_secs(),
            }),
            LinkEvent::Resumed => {
                events.emit(ClientEvent::Reconnected { sas: sas.clone() });
                let _ = to_peer.send(Message::KeyframeRequest).await;
            }
        }
    }
}

async fn wait_for_end(commands: &mut mpsc::Receiver<ClientCommand>) {
    loop {
        match commands.recv().await {
            Some(ClientCommand::End) | None => return,
            Some(
                ClientCommand::Input(_)
                | ClientCommand::RequestControl
                | ClientCommand::AgentKey(_),
            ) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{keys, lan_agent, valid_cert};
    use sightline_core::identity::Fingerprint as Fp;

    /// A data directory holding the operator's identity key.
    fn data_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let pem = keys().operator.to_pkcs8_pem().expect("pem");
        keystore::write_new_secret(&dir.path().join("identity-key.pem"), pem.as_bytes())
            .expect("key file");
        dir
    }

    /// Runs a direct session with the stored certificate against a LAN agent that accepts
    /// `allowed` keys; returns the client's events.
    fn direct_session(allowed: Vec<Fp>) -> Vec<ClientEvent> {
        let rt = sightline_net::cli::runtime().expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("listen");
        let address: DirectAddress = listener
            .local_addr()
            .expect("address")
            .to_string()
            .parse()
            .expect("parse");
        let agent = rt.spawn(lan_agent(listener, allowed));
        let dir = data_dir();
        let stored = StoredCert {
            cert: valid_cert(clock::now_unix()),
            authority: crate::testkeys::authority(),
            revocations: None,
        };
        let handle = spawn(
            DirectParams {
                address,
                stored: Box::new(stored),
                require_control: false,
                data_dir: dir.path().to_path_buf(),
                agent_key: AgentKeyCheck {
                    policy: crate::known_hosts::AgentKeyPolicy::AcceptNew,
                    ask: false,
                },
            },
            Arc::new(|| {}),
        )
        .expect("client");
        let mut events = Vec::new();
        while let Some(e) = handle.next_event(Duration::from_secs(30)) {
            let last = matches!(e, ClientEvent::Closed { .. } | ClientEvent::Failed(_));
            events.push(e);
            if last {
                break;
            }
        }
        let _ = rt.block_on(agent);
        events
    }

    #[test]
    fn a_direct_session_with_the_stored_certificate() {
        let events = direct_session(vec![]);
        let mut it = events.iter();
        match it.next() {
            Some(ClientEvent::Direct { address, rights }) => {
                assert!(address.starts_with("127.0.0.1:"), "{address}");
                assert_eq!(rights.operator, "alice");
            }
            other => panic!("first event: {other:?}"),
        }
        // Trusted on first use (the flag), before the session is used.
        match it.next() {
            Some(ClientEvent::AgentKey(r)) => {
                assert_eq!(r.status, crate::agent_key::AgentKeyStatus::Remembered);
                assert_eq!(r.fingerprint, keys().agent.public().fingerprint());
            }
            other => panic!("then: {other:?}"),
        }
        match it.next() {
            Some(ClientEvent::Connected {
                peer_fingerprint,
                rights,
                ..
            }) => {
                assert_eq!(
                    *peer_fingerprint,
                    keys().agent.public().fingerprint().to_string()
                );
                assert!(rights.may_control());
            }
            other => panic!("then: {other:?}"),
        }
        match events.last() {
            Some(ClientEvent::Closed {
                normal: true,
                close: Some(CloseReason::EndedByCustomer),
                ..
            }) => {}
            other => panic!("last: {other:?}"),
        }
        assert!(!events.iter().any(|e| matches!(e, ClientEvent::Code { .. })));
    }

    #[test]
    fn a_refusal_is_reported_as_such() {
        let events = direct_session(vec![Fp([7; 32])]);
        assert!(matches!(events.first(), Some(ClientEvent::Direct { .. })));
        assert!(!events
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { .. })));
        match events.last() {
            Some(ClientEvent::Failed(m)) => {
                assert!(m.starts_with("the agent refused this operator: "), "{m}")
            }
            other => panic!("last: {other:?}"),
        }
    }

    fn rights(permissions: Permissions, max_session_secs: u64) -> OperatorRights {
        OperatorRights {
            operator: "alice".into(),
            permissions,
            max_session_secs,
            certificate_expires: 1_700_000_000,
        }
    }

    #[test]
    fn control_needs_the_control_permission() {
        let view = rights(Permissions::VIEW, 0);
        assert!(!view.may_control());
        assert_eq!(check_rights(&view, false), Ok(()));
        assert_eq!(
            check_rights(&view, true),
            Err(VIEW_ONLY_MESSAGE.to_string())
        );
        let full = rights(Permissions::VIEW.union(Permissions::CONTROL), 0);
        assert!(full.may_control());
        assert_eq!(check_rights(&full, true), Ok(()));
        assert_eq!(
            VIEW_ONLY_MESSAGE,
            "your account may not control customers' machines: view only"
        );
    }

    #[test]
    fn consent_texts() {
        assert_eq!(
            consent_pending_text(ConsentFor::Viewing),
            "Waiting for the customer to allow viewing…"
        );
        assert_eq!(consent_name(ConsentFor::Viewing), "viewing");
        assert_eq!(consent_name(ConsentFor::Control), "control");
    }

    #[test]
    fn rights_summary() {
        let r = rights(Permissions::VIEW.union(Permissions::CONTROL), 1800);
        assert_eq!(r.permission_names(), vec!["view", "control"]);
        assert_eq!(r.summary(), "view, control; sessions up to 30 min");
        assert_eq!(
            rights(Permissions::VIEW, 0).summary(),
            "view; no session time limit"
        );
        assert_eq!(
            rights(Permissions::NONE, 90).summary(),
            "no permissions; sessions up to 90 s"
        );
    }
}

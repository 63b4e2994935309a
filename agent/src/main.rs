//! `agent`: the customer's program. Joins a session with the code the operator reads out,
//! verifies the operator's certificate against the pinned relay CA, and shows who is
//! connecting together with the verification code.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use sightline_agent::control::Control as InputControl;
use sightline_agent::customer::{self, Answer, Command as CustomerCommand, Summary, Usage};
use sightline_agent::indicator::{Hotkey, Indicator, IndicatorText};
use sightline_agent::rights::{InputGate, Rights};
use sightline_agent::share::{self, ShareConfig};
use sightline_core::code::SessionCode;
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::identity::{DEFAULT_IDENTITY_BITS, MIN_PEER_BITS};
use sightline_core::messages::{CloseReason, ConsentFor, Message};
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::{self, AppChannels, SessionEnd};
use sightline_net::{clock, keystore, RelayClient};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, unbounded_channel};
use tokio::sync::oneshot;

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

The session ends when you press Ctrl-C or the operator ends it.")]
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
    let rights = Rights::from_certificate(&cert);
    out.event(
        json!({"event": "connected", "sas": session.sas(),
               "peer": {"role": "operator", "operator": cert.operator, "display_name": cert.display_name,
                        "organisation": cert.organisation, "permissions": cert.permissions.names(),
                        "max_session_secs": cert.max_session_secs,
                        "fingerprint": peer.fingerprint.to_string(), "certificate_expires": cert.not_after}}),
        || format!(
            "Connected to {} ({}), verified by your help desk's relay.\nThe operator may: {}\nVerification code: {}  (the operator sees the same code)\nPress Ctrl-C to end the session.",
            cert.display_name,
            if cert.organisation.is_empty() { "no organisation" } else { &cert.organisation },
            rights.describe(),
            session.sas()
        ),
    );
    if !rights.may_view() {
        // Nothing to share: end at once and say why, before any capture starts.
        tracing::warn!(operator = %cert.operator, "operator may not view; ending the session");
        let (app, _to_peer, _from_peer) = AppChannels::pair(1);
        let end = session::run(
            &mut stream,
            &mut session,
            hello_message(),
            async { CloseReason::NotPermitted },
            app,
        )
        .await;
        out.event(
            json!({"event": "closed", "reason": end.reason(), "normal": end.is_normal()}),
            || format!("Session ended: {}", end.reason()),
        );
        return Ok(end);
    }

    let started = clock::now_unix();
    let (app, to_peer, from_peer) = AppChannels::pair(64);
    let (close_tx, close_rx) = oneshot::channel::<CloseReason>();
    let customer = Customer {
        out,
        operator: cert.display_name.clone(),
        organisation: cert.organisation.clone(),
        rights,
        share: ShareConfig {
            monitor: cli.monitor,
            fps: cli.fps,
        },
        consent_timeout: Duration::from_secs(cli.consent_timeout),
    };
    // The customer's side runs beside the session pump: it asks for consent, starts and stops
    // sharing and control, and asks the pump to close when the customer ends the session.
    let controller = tokio::spawn(customer.run(from_peer, to_peer, close_tx));
    let end = session::run(
        &mut stream,
        &mut session,
        hello_message(),
        async {
            let limit = async {
                match rights.max_session {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cli::shutdown_signal() => CloseReason::EndedByCustomer,
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
        operator: cert.display_name.clone(),
        organisation: cert.organisation.clone(),
        started,
        ended: clock::now_unix(),
        used,
        reason: end.reason(),
    };
    out.event(summary.json(), || summary.text());
    Ok(end)
}

/// Everything the customer's side of a session needs.
struct Customer {
    out: Output,
    operator: String,
    organisation: String,
    rights: Rights,
    share: ShareConfig,
    consent_timeout: Duration,
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
        let mut lines = customer::stdin_lines();
        let out = self.out;

        // 1. Viewing needs a yes; nothing is captured before it.
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
        let answer = loop {
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
        out.event(
            json!({"event": "consent", "what": "viewing", "allowed": true}),
            || "You allowed viewing.".into(),
        );

        // 2. Share: the on-screen banner and hotkeys first, so that the very first picture
        // the operator gets shows the customer what they see; then capture.
        let (hotkey_tx, mut hotkeys) = unbounded_channel::<Hotkey>();
        let wanted = self.share.monitor;
        let indicator = match tokio::task::spawn_blocking(move || {
            sightline_agent::capture::find(wanted)
        })
        .await
        {
            Ok(Ok(m)) => {
                match Indicator::start(m.x, m.y, m.width, self.banner_text(false), hotkey_tx) {
                    Ok(i) => Some(i),
                    Err(e) => {
                        tracing::warn!(error = %e, "no on-screen indicator");
                        out.event(json!({"event": "indicator", "shown": false, "message": e.to_string()}), || {
                        format!("(No on-screen indicator: {e}. This terminal shows the session status.)")
                    });
                        None
                    }
                }
            }
            // The capture below reports the problem.
            _ => None,
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
                   "indicator": indicator.is_some()}),
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
        let mut stdin_open = true;
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

//! `agent`: the customer's program. Joins a session with the code the operator reads out,
//! verifies the operator's certificate against the pinned relay CA, and shows who is
//! connecting together with the verification code.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use sightline_agent::control::Control;
use sightline_agent::rights::{InputGate, Rights};
use sightline_agent::share::{self, ShareConfig};
use sightline_core::code::SessionCode;
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::identity::{DEFAULT_IDENTITY_BITS, MIN_PEER_BITS};
use sightline_core::messages::{CloseReason, Message};
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::{self, AppChannels, SessionEnd};
use sightline_net::{clock, keystore, RelayClient};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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
        let hello = hello_message();
        let end = session::run(
            &mut stream,
            &mut session,
            hello,
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
    let hello = hello_message();
    let (app, to_peer, mut from_peer) = AppChannels::pair(64);
    // Control is granted with the session for now; the consent work puts the customer in
    // charge of it. Only an operator whose certificate allows control gets it.
    let share = share::start(
        ShareConfig {
            monitor: cli.monitor,
            fps: cli.fps,
        },
        to_peer.clone(),
    )?;
    out.event(
        json!({"event": "sharing", "monitor": share.monitor.index, "width": share.monitor.width, "height": share.monitor.height}),
        || format!("Sharing your screen ({}x{}).", share.monitor.width, share.monitor.height),
    );
    let control = if rights.may_control() {
        let monitor = share.monitor.clone();
        let control = tokio::task::spawn_blocking(move || Control::start(monitor)).await??;
        let _ = to_peer.send(Message::Control { granted: true }).await;
        Some(control)
    } else {
        None
    };
    let mut gate = InputGate::new(&rights);
    let dispatch = async move {
        while let Some(msg) = from_peer.recv().await {
            match msg {
                Message::KeyframeRequest => share.request_keyframe(),
                // Deny by default: the certificate decides, whatever the viewer sends.
                Message::Input(ev) => {
                    if let (Some(ev), Some(c)) = (gate.admit(ev), &control) {
                        c.inject(ev);
                    }
                }
                other => tracing::debug!(?other, "ignoring message"),
            }
        }
        // The session has ended (the pump dropped its sender).
        (control, share)
    };
    let dispatcher = tokio::spawn(dispatch);
    let end = session::run(
        &mut stream,
        &mut session,
        hello,
        async {
            let limit = async {
                match rights.max_session {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cli::shutdown_signal() => CloseReason::EndedByCustomer,
                () = limit => {
                    tracing::info!("session time limit reached");
                    CloseReason::TimeLimit
                }
            }
        },
        app,
    )
    .await;
    // The session is over: the dispatcher ends once the pump's channels close.
    drop(to_peer);
    if let Ok((control, share)) = dispatcher.await {
        // Stops capture and encoding.
        drop(share);
        // Releases every key and button the operator held, before the process exits.
        if let Some(control) = control {
            let _ = tokio::task::spawn_blocking(move || control.stop()).await;
        }
    }
    out.event(
        json!({"event": "closed", "reason": end.reason(), "normal": end.is_normal()}),
        || format!("Session ended: {}", end.reason()),
    );
    Ok(end)
}

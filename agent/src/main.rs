//! `agent`: the customer's program. Parses the command line and dispatches: joins a session
//! through the relay with the code the operator reads out (verifying the operator's
//! certificate against the pinned relay CA), serves LAN-only kiosk connections
//! ([`app::kiosk`]), or lists the monitors. A session itself runs in [`app::session`].

mod app;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use ipnet::IpNet;
use serde_json::json;
use sightline_agent::lan;
use sightline_agent::share::ShareConfig;
use sightline_core::bundle::Bundle;
use sightline_core::code::SessionCode;
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::identity::Fingerprint;
use sightline_core::identity::{DEFAULT_IDENTITY_BITS, MIN_PEER_BITS};
use sightline_media::encode::Backend;
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::resume::RelayLink;
use sightline_net::session::SessionEnd;
use sightline_net::{clock, keystore, RelayClient};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
  agent fingerprint                            (this agent's key, for viewers to pin)
  agent audit verify kiosk-audit.jsonl         (check a kiosk's own log)
  agent --verify sightline-agent.deb           (check a download against the signed SHA256SUMS)
  agent --monitor 1 --relay relay.example.com --relay-key 3f5e...c2 123 456 7890
  agent --lan-only --relay-key 3f5e...c2 --allow 192.168.10.0/24                 (kiosk)
  agent --lan-only --relay-key 3f5e...c2 --revocation-list /etc/sightline/revocations.bin

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
    /// LAN-only: a revocation list from `relay crl` (needs --relay-key). Read at start (the
    /// agent does not start with a list that does not verify against the relay key), read
    /// again when the file changes; a newer list that a viewer brings is adopted and written
    /// to this file. Operators whose certificate is listed are refused.
    #[arg(long, value_name = "FILE", requires = "lan_only")]
    revocation_list: Option<PathBuf>,
    /// LAN-only: the kiosk's own audit log, JSON lines, hash-chained (check it with
    /// `agent audit verify FILE`) [default: kiosk-audit.jsonl in the data directory]
    #[arg(long, value_name = "FILE", requires = "lan_only")]
    audit_log: Option<PathBuf>,
    /// LAN-only: seconds a new connection has to complete its handshake.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120), requires = "lan_only")]
    handshake_timeout: u64,
    /// Seconds the customer has to answer a request to view or control (5 to 600).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=600))]
    consent_timeout: u64,
    /// Relay address: HOST:PORT (plain TCP), HOST alone (tcp://HOST:7615, then
    /// wss://HOST:443/sightline, then ws://HOST:80/sightline), or a comma-separated list of
    /// tcp://HOST[:PORT], tls://HOST[:PORT] (port 7615), ws://HOST[:PORT][/PATH] (80),
    /// wss://HOST[:PORT][/PATH] (443; path /sightline), tried in order, each next one 500 ms
    /// later or as soon as the one before failed.
    #[arg(long, value_name = "ADDR")]
    relay: Option<String>,
    /// HTTP proxy to reach the relay through (HTTP CONNECT), http://[USER:PASSWORD@]HOST:PORT,
    /// or `none` for no proxy. Overrides HTTPS_PROXY (tcp, tls, wss), HTTP_PROXY (ws) and
    /// NO_PROXY from the environment and `proxy` in the config file.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Pinned relay key fingerprint, 64 hex digits (branded builds and the config file set it).
    #[arg(long, value_name = "HEX")]
    relay_key: Option<String>,
    /// The session code the operator gave you (asked for on the terminal when missing).
    #[arg(value_name = "CODE", num_args = 0..)]
    code: Vec<String>,
    /// One JSON object per line on stdout for each event.
    #[arg(long)]
    json: bool,
    /// Open the agent's window (code field, consent buttons) instead of asking on the
    /// terminal; the default when started with no terminal, no code and a display (opened
    /// from a file manager).
    #[arg(long, conflicts_with_all = ["code", "json", "lan_only"])]
    gui: bool,
    /// JSON events carry the terminal's text too (what the window shows).
    #[arg(long, hide = true, requires = "json")]
    event_text: bool,
    /// Directory for this agent's identity key (default: the platform data dir + /agent).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (default: the platform config dir + /agent.toml, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    verify: app::verify::VerifyArgs,
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

    /// What `--lan-only` runs with, from the flags.
    fn kiosk_options(self) -> app::kiosk::KioskOptions {
        app::kiosk::KioskOptions {
            share: self.share_config(),
            config: self.config,
            data_dir: self.data_dir,
            relay: self.relay,
            relay_key: self.relay_key,
            operator_keys: self.operator_keys,
            key_permissions: self.key_permissions,
            allow: self.allow,
            listen: self.listen,
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            consent_timeout: Duration::from_secs(self.consent_timeout),
            max_sessions: self.max_sessions,
            max_pending: self.max_pending,
            revocation_list: self.revocation_list,
            audit_log: self.audit_log,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the monitors that can be shared.
    Monitors,
    /// Print this agent's key fingerprint (64 hex digits) alone on one line, creating the key
    /// if there is none yet (as the agent does at start). Viewers pin it with
    /// `viewer --direct ADDRESS --agent-key FINGERPRINT`.
    #[command(after_help = "Examples:
  agent fingerprint
  agent fingerprint --json
  agent fingerprint --data-dir /var/lib/sightline-kiosk/sightline/agent   (the kiosk unit's)")]
    Fingerprint {
        /// Directory of this agent's identity key (default: the platform data dir + /agent).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// One JSON object on stdout instead of the bare fingerprint.
        #[arg(long)]
        json: bool,
    },
    /// The LAN kiosk's own audit log: check it, or print its checkpoint key.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check a kiosk's log: exit 0 and `ok: N entries, last checkpoint #ID at TIME`, or exit 1
    /// and `bad: entry #ID: what` naming the first changed, missing, inserted, moved or cut
    /// line.
    #[command(after_help = "Examples:
  agent audit verify /var/lib/sightline-kiosk/sightline/agent/kiosk-audit.jsonl
  agent audit verify kiosk-audit.jsonl --key 9c1f...e4      (on another machine)")]
    Verify {
        /// The log file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The kiosk's checkpoint key, 64 hex digits from `agent audit key` (default: the key
        /// in the data directory, if there is one).
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// Directory of the kiosk's keys (default: the platform data dir + /agent).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print the public key that signs the kiosk's checkpoints (64 hex digits), creating it
    /// if there is none yet (as the kiosk does at start).
    Key {
        /// Directory of the kiosk's keys (default: the platform data dir + /agent).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    cli::init_logging();
    let cli = Cli::parse();
    if let Some(status) = cli.verify.run(cli.json) {
        return status;
    }
    match cli.command {
        Some(Command::Monitors) => return list_monitors(cli.json),
        Some(Command::Fingerprint { data_dir, json }) => return print_fingerprint(data_dir, json),
        Some(Command::Audit(AuditCommand::Verify {
            file,
            key,
            data_dir,
        })) => return app::audit::cli::verify(&file, key, data_dir),
        Some(Command::Audit(AuditCommand::Key { data_dir })) => {
            return app::audit::cli::print_key(data_dir)
        }
        None => {}
    }
    let out = Output {
        json: cli.json,
        text: cli.event_text,
    };
    let bundle = match sightline_agent::bundled::own() {
        Ok(b) => b,
        Err(e) => {
            out.fatal("agent", &e.to_string());
            return ExitCode::FAILURE;
        }
    };
    if cli.lan_only {
        return cli::run_main("agent", out, app::kiosk::serve(cli.kiosk_options(), out));
    }
    if let Some(status) = open_window(&cli, bundle.as_ref()) {
        return status;
    }
    cli::run_main("agent", out, run(cli, bundle, out))
}

/// The window for customers without a terminal, when asked for or started that way; `None`
/// to go on in the terminal.
fn open_window(cli: &Cli, bundle: Option<&Bundle>) -> Option<ExitCode> {
    #[cfg(feature = "window")]
    {
        if !app::window::wanted(cli.gui, cli.json, !cli.code.is_empty()) {
            return None;
        }
        let help_desk = bundle.map(|b| {
            sightline_core::text::display_safe(
                &b.settings.help_desk,
                sightline_core::text::MAX_DISPLAY_CHARS,
            )
        });
        Some(match app::window::run(help_desk) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agent: error: {e}");
                ExitCode::FAILURE
            }
        })
    }
    #[cfg(not(feature = "window"))]
    {
        let _ = bundle;
        cli.gui.then(|| {
            eprintln!("agent: error: this agent was built without its window (feature `window`); run it in a terminal");
            ExitCode::FAILURE
        })
    }
}

fn list_monitors(json: bool) -> ExitCode {
    let out = Output::new(json);
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

/// `agent fingerprint`: the key the agent proves in every handshake, loaded (or created, as
/// at start) from the data directory.
fn print_fingerprint(data_dir: Option<PathBuf>, json: bool) -> ExitCode {
    let out = Output::new(json);
    let found = cli::data_dir("agent", data_dir)
        .map_err(anyhow::Error::from)
        .and_then(|dir| {
            let path = dir.join("identity-key.pem");
            let (key, created) =
                keystore::load_or_create_key(&path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)?;
            Ok((key.public().fingerprint(), created, path))
        });
    match found {
        Ok((fingerprint, created, path)) => {
            out.event(
                json!({"event": "fingerprint", "fingerprint": fingerprint.to_string(),
                       "key_file": path.display().to_string(), "created": created}),
                || fingerprint.to_string(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            out.fatal("agent", &format!("{e:#}"));
            ExitCode::FAILURE
        }
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

async fn run(cli: Cli, bundle: Option<Bundle>, out: Output) -> Result<SessionEnd> {
    let share = cli.share_config();
    let config = ClientConfig::load("agent", cli.config.as_deref())?;
    let (relay_flag, key_flag) = match &bundle {
        Some(b) => app::bundle::settings(b, cli.relay, cli.relay_key, out)?,
        None => (cli.relay, cli.relay_key),
    };
    let (relay, pin) = config.relay_target(relay_flag, key_flag, cli.proxy)?;
    let code = read_code(&cli.code)?;
    let dir = cli::data_dir("agent", cli.data_dir)?;
    let key_path = dir.join("identity-key.pem");
    let (key, _) = tokio::task::spawn_blocking(move || {
        keystore::load_or_create_key(&key_path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)
    })
    .await??;

    let client = RelayClient::connect_to(&relay, pin).await?;
    if let Some(dialed) = client.dialed() {
        cli::announce_route(out, dialed);
    }
    // The authority that issued the operator's certificate, its root checked against the pin.
    let joined = client.join_as(&code, &key).await?;
    let mut stream = joined.stream;
    let link = RelayLink {
        relay,
        pin,
        session_id: joined.session_id,
        token: joined.resume_token,
    };
    let cfg = E2eConfig {
        session_id: joined.session_id,
        seed: clock::seed(),
        trust: Trust::OperatorCertificateFrom(joined.authority),
        channel: Default::default(),
    };
    let mut session = sightline_net::session::agent_handshake(&mut stream, cfg, &key).await?;
    let peer = session.peer().clone();
    let cert = peer
        .certificate
        .clone()
        .ok_or_else(|| anyhow!("operator has no certificate"))?;
    let operator = app::session::Operator::certified(&cert, peer.fingerprint.to_string());
    let settings = app::session::SessionSettings {
        out,
        signing_key: Some(std::sync::Arc::new(key)),
        share,
        consent_timeout: Duration::from_secs(cli.consent_timeout),
        unattended: false,
    };
    let end = app::session::serve(
        &mut stream,
        &mut session,
        operator,
        &settings,
        cli::shutdown_signal(),
        Some(link),
        None,
    )
    .await;
    Ok(end)
}

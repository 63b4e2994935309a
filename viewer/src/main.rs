//! `viewer`: the operator's program. This build provides the headless `session` command:
//! log in to the relay, get a one-time code, wait for the customer's agent, run the
//! end-to-end handshake and hold the session until either side ends it.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::identity::{DEFAULT_IDENTITY_BITS, MIN_PEER_BITS};
use sightline_core::messages::{CloseReason, Message};
use sightline_core::relay_proto::Secret;
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::{self, SessionEnd};
use sightline_net::{clock, keystore, RelayClient};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "viewer",
    version,
    about = "Sightline viewer: see and support a customer's screen"
)]
#[command(arg_required_else_help = true)]
struct Cli {
    /// Directory for the operator's identity key (default: the platform data dir + /viewer).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (default: the platform config dir + /viewer.toml, if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in, get a session code, and hold an end-to-end session with the customer's agent.
    #[command(after_help = "Examples:
  echo \"$PASSWORD\" | viewer session --relay relay.example.com:7615 \\
      --relay-key 3f5e...c2 --user alice --password-stdin
  viewer session --relay 127.0.0.1:7615 --relay-key $(relay fingerprint) --user alice --json

Ends with Ctrl-C (sends an explicit close to the customer).")]
    Session {
        /// Relay address HOST:PORT (default port 7615).
        #[arg(long, value_name = "ADDR")]
        relay: Option<String>,
        /// Pinned relay key fingerprint, 64 hex digits, as printed by `relay fingerprint`.
        #[arg(long, value_name = "HEX")]
        relay_key: Option<String>,
        /// Operator account name.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
        /// One JSON object per line on stdout for each event.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    cli::init_logging();
    let cli = Cli::parse();
    let Command::Session { json, .. } = &cli.command;
    let out = Output { json: *json };
    cli::run_main("viewer", out, run(cli, out))
}

fn read_password(from_stdin: bool) -> Result<Secret> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password("Password: ")
            .context("reading the password (use --password-stdin when there is no terminal)")?
    };
    if pw.is_empty() {
        return Err(anyhow!("empty password"));
    }
    Ok(Secret::new(pw))
}

async fn run(cli: Cli, out: Output) -> Result<SessionEnd> {
    let Command::Session {
        relay,
        relay_key,
        user,
        password_stdin,
        ..
    } = cli.command;
    let config = ClientConfig::load("viewer", cli.config.as_deref())?;
    let (addr, pin) = config.relay(relay, relay_key)?;
    let dir = cli::data_dir("viewer", cli.data_dir)?;
    let key_path = dir.join("identity-key.pem");
    let (key, created) = tokio::task::spawn_blocking(move || {
        keystore::load_or_create_key(&key_path, DEFAULT_IDENTITY_BITS, MIN_PEER_BITS)
    })
    .await??;
    if created {
        eprintln!(
            "viewer: created identity key {}",
            key.public().fingerprint()
        );
    }
    let password = read_password(password_stdin)?;

    let mut client = RelayClient::connect(&addr, pin).await?;
    let cert = client.login(&user, password, key.public()).await?;
    let body = cert
        .verify(client.ca(), clock::now_unix())
        .context("certificate from relay")?;
    if body.key != key.public().fingerprint() {
        return Err(anyhow!("the relay issued a certificate for another key"));
    }
    let created = client.create_session().await?;
    let minutes = created
        .expires_at
        .saturating_sub(clock::now_unix())
        .div_ceil(60);
    out.event(
        json!({"event": "code", "code": created.code.digits(), "grouped": created.code.grouped(),
               "expires_at": created.expires_at}),
        || {
            format!(
                "Session code: {}   (read it to the customer; valid {minutes} min, until {})",
                created.code.grouped(),
                cli::utc(created.expires_at)
            )
        },
    );

    let paired = tokio::select! {
        r = client.wait_paired() => r?,
        _ = cli::shutdown_signal() => {
            let end = SessionEnd::LocalClosed(CloseReason::EndedByOperator);
            out.event(json!({"event": "closed", "reason": "cancelled before the customer joined", "normal": true}),
                || "Cancelled before the customer joined.".into());
            return Ok(end);
        }
    };
    let (mut stream, session_id) = paired;
    let cfg = E2eConfig {
        session_id,
        seed: clock::seed(),
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    };
    let mut session = session::operator_handshake(&mut stream, cfg, &key, cert).await?;
    let peer = session.peer().clone();
    out.event(
        json!({"event": "connected", "sas": session.sas(),
               "peer": {"role": "agent", "fingerprint": peer.fingerprint.to_string()}}),
        || format!(
            "Connected to the customer's agent (key {}).\nVerification code: {}  (the customer sees the same code)\nPress Ctrl-C to end the session.",
            peer.fingerprint, session.sas()
        ),
    );
    let hello = Message::Hello {
        software: format!("sightline-viewer/{}", env!("CARGO_PKG_VERSION")),
        capabilities: vec![],
    };
    let end = session::run(&mut stream, &mut session, hello, async {
        cli::shutdown_signal().await;
        CloseReason::EndedByOperator
    })
    .await;
    out.event(
        json!({"event": "closed", "reason": end.reason(), "normal": end.is_normal()}),
        || format!("Session ended: {}", end.reason()),
    );
    Ok(end)
}

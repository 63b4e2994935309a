//! `viewer`: the operator's program. Without a subcommand it opens the window (log in, read
//! the code to the customer, see and control their screen); `viewer session` runs the same
//! session headless for automation and tests.

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use sightline_core::identity::Fingerprint;
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::SessionEnd;
use sightline_viewer::agent_key::AgentKeyCheck;
use sightline_viewer::client::{DirectParams, OidcLogin, SessionParams, Start};
use sightline_viewer::credentials::{self, Credentials};
use sightline_viewer::direct::{self, CertificateChoice, DirectAddress};
use sightline_viewer::known_hosts::AgentKeyPolicy;
use sightline_viewer::recording_cli::{self, ExportArgs, PlayArgs};
use sightline_viewer::verify_update::{self, VerifyUpdateArgs};
use sightline_viewer::{gui, headless, script};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "viewer",
    version,
    about = "Sightline viewer: see and support a customer's screen"
)]
#[command(after_help = "Examples:
  viewer                                              (opens the window)
  viewer --relay relay.example.com:7615 --relay-key 3f5e...c2 --user alice
  viewer --direct 192.168.1.20                         (a LAN-only agent, port 7615)
  printf '%s\\n%s\\n' \"$PASSWORD\" \"$CODE\" | viewer session --relay 127.0.0.1:7615 \\
      --relay-key 3f5e...c2 --user alice --password-stdin --json --frames 100 --save-frame last.png

With --password-stdin, standard input holds the password on its first line and the second
factor (the 6-digit code from your authenticator app, or a recovery code) on its second; an
empty or missing second line means none (accounts without two-factor login). Without it,
`viewer session` asks for both on the terminal.

Every relay login stores the operator certificate (operator-cert.bin) and the relay CA key
(relay-ca.der) in the data directory; --direct uses them while the certificate is valid, and
then reads no password.

--direct checks the agent's key against the known hosts (known-hosts in the data directory).
A first connection asks in the window, and is refused by `viewer session` unless
--agent-key FINGERPRINT (from `agent fingerprint` on the kiosk) or --accept-new-agent-key is
given; a key that changed is always refused.")]
struct Cli {
    /// Directory for the operator's identity key (default: the platform data dir + /viewer).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (default: the platform config dir + /viewer.toml, if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    relay: RelayArgs,
    /// Connect straight to a LAN-only agent (`agent --lan-only`) at HOST[:PORT] (default port
    /// 7615; IPv6 as [ADDRESS]:PORT) instead of asking the relay for a session code. Uses the
    /// certificate stored at the last relay login while it is valid; otherwise logs in to the
    /// relay first (needs --relay/--relay-key, or the config file, and --user).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    direct: Option<String>,
    /// The window: prefill "Single sign-on" with the relay's OpenID Connect provider PROVIDER
    /// (a `[[oidc]]` name of relay.toml); its "Sign in with PROVIDER" button signs in in the
    /// system browser. (`viewer session --oidc` is the headless sign-in.)
    #[arg(long = "sign-in-with", value_name = "PROVIDER")]
    sign_in_with: Option<String>,
    /// With --direct: accept the agent's key on a first connection to its address and store
    /// it in the known hosts (trust on first use). A changed key is still refused.
    #[arg(long, global = true, requires = "direct", conflicts_with = "agent_key")]
    accept_new_agent_key: bool,
    /// With --direct: the agent's key fingerprint (64 hex digits, as `agent fingerprint`
    /// prints it on the kiosk). Any other key is refused; this one is stored for the address,
    /// replacing the key stored before.
    #[arg(long, global = true, value_name = "HEX", requires = "direct")]
    agent_key: Option<Fingerprint>,
    /// Window mode: read the password (first line) and the authenticator or recovery code
    /// (second line, empty for none) from stdin and log in at once (for kiosks and tests).
    #[arg(long)]
    password_stdin: bool,
    /// Window mode: also print events as JSON lines on stdout (login, code, connected,
    /// first_frame, control, paused, resumed, closed; see docs/protocol.md).
    #[arg(long)]
    json: bool,
    /// Window mode: ask the customer for control once they allow viewing and play this input script
    /// after their yes (the format of `viewer session --send-input`; for demos and tests).
    #[arg(long, value_name = "FILE")]
    send_input: Option<PathBuf>,
    /// Record the session when the help desk's policy leaves recording to the operator
    /// (`mode = "optional"`); a `required` recording is made whatever this says.
    #[arg(long, global = true)]
    record: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct RelayArgs {
    /// Relay address: HOST:PORT (plain TCP), HOST alone (tcp://HOST:7615, then
    /// wss://HOST:443/sightline, then ws://HOST:80/sightline), or a comma-separated list of
    /// tcp://HOST[:PORT], tls://HOST[:PORT] (port 7615), ws://HOST[:PORT][/PATH] (80),
    /// wss://HOST[:PORT][/PATH] (443; path /sightline), tried in order, each next one 500 ms
    /// later or as soon as the one before failed.
    #[arg(long, global = true, value_name = "ADDR")]
    relay: Option<String>,
    /// HTTP proxy to reach the relay through (HTTP CONNECT), http://[USER:PASSWORD@]HOST:PORT,
    /// or `none` for no proxy. Overrides HTTPS_PROXY (tcp, tls, wss), HTTP_PROXY (ws) and
    /// NO_PROXY from the environment and `proxy` in the config file.
    #[arg(long, global = true, value_name = "URL")]
    proxy: Option<String>,
    /// Pinned relay key fingerprint, 64 hex digits, as printed by `relay fingerprint`.
    #[arg(long, global = true, value_name = "HEX")]
    relay_key: Option<String>,
    /// Operator account name.
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in, get a session code, and hold the session with the customer's agent, headless.
    #[command(after_help = "Examples:
  printf '%s\\n%s\\n' \"$PASSWORD\" \"$CODE\" | viewer session --relay relay.example.com:7615 \\
      --relay-key 3f5e...c2 --user alice --password-stdin
  echo \"$PASSWORD\" | viewer session ... --password-stdin    (account without two-factor login)
  viewer session --relay 127.0.0.1:7615 --relay-key $(relay fingerprint) --user alice --json \\
      --frames 30 --save-frame screen.png --send-input clicks.txt
  viewer session --direct 192.168.1.20:7615 --agent-key 9c41...07 --json
                                            (LAN-only agent, stored certificate, pinned key)
  viewer session --direct [fd00::20]:7615 --relay 127.0.0.1:7615 --user alice --password-stdin

Without --password-stdin it asks on the terminal for the password and then for the
authenticator code (or a recovery code; press Enter for none). With --password-stdin the
password is the first line of standard input and the code the second (empty or missing: none).

The customer first allows viewing (\"Waiting for the customer to allow viewing…\") and may end
the session at any time. Ends with Ctrl-C (sends an explicit close to the customer), after
--frames, or at `end` in the input script. The input script format is described in the README.

--send-input asks the customer for control once they allow viewing and plays the script only
after they allow it (a refusal stops the script; `request-control` in the script asks again,
e.g. after the customer took control back). --request-control asks without a script. Both need
an account allowed to control customers' machines: for a view-only account the session fails
right after login, before a code is issued.")]
    Session(SessionArgs),
    /// Export a session recording: the video as WebM or IVF, the operator's input as JSON lines.
    #[command(after_help = "Examples:
  viewer export session.slrec --identity auditor-key.txt --out session.webm
  viewer export session.slrec --identity auditor-key.txt --out session.ivf --input-log input.jsonl

The identity file is the auditor's age key as age-keygen writes it. The packets are copied as
recorded (no re-encoding), from the first keyframe on. See docs/recording-format.md.")]
    Export(ExportArgs),
    /// Play a session recording, or verify it (--verify) against the agent's signatures.
    #[command(after_help = "Examples:
  viewer play session.slrec --identity auditor-key.txt
  viewer play session.slrec --identity auditor-key.txt --seek 95 --paused
  viewer play session.slrec --identity auditor-key.txt --verify
  viewer play session.slrec --identity auditor-key.txt --verify --json --expect-agent 9c41...07

Without --verify the recording opens in a window: Space plays and pauses, Left and Right seek
5 s back and on, a click or a drag on the timeline seeks there; the speed is 0.5x to 8x. See
docs/operator.md, \"Playing back a recording\".

--verify exits 0 only if the recording decrypts whole and its video is exactly what the agent
sent (every window between the agent's signed checkpoints holds, up to the final one), else 1.
Compare the agent key fingerprint it prints with the relay's audit log entry session.paired,
or give it with --expect-agent.")]
    Play(PlayArgs),
    /// Check a downloaded Sightline release file against the signed SHA256SUMS beside it.
    #[command(after_help = "Examples:
  viewer verify-update ~/Downloads/sightline-viewer-x86_64-linux.tar.gz
  viewer verify-update sightline-agent.deb --sums release/SHA256SUMS --json
  viewer verify-update dist/viewer.tar.gz --public-key dist/throwaway.pub   (CI artefacts)

Checks, in this order, that SHA256SUMS is signed (SHA256SUMS.minisig) by the Sightline release
key pinned in this build (or the --public-key given), that FILE's name is listed in it, and
that FILE's SHA-256 is the listed one. Exit 0 and `verified: NAME (sha256 HEX) signed by KEYID`,
else 1 and the reason. The same check by hand: minisign -V -p sightline.pub -m SHA256SUMS, then
sha256sum -c --ignore-missing SHA256SUMS.")]
    VerifyUpdate(VerifyUpdateArgs),
}

#[derive(Args, Debug)]
struct SessionArgs {
    /// Read the password from the first line of standard input and the authenticator or
    /// recovery code from the second (empty or missing: none) instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// Sign in through the relay's OpenID Connect provider PROVIDER (a `[[oidc]]` name of
    /// relay.toml) with the device grant: prints the provider's page and a code, which you
    /// open and type in a browser on any device; no password is typed here.
    #[arg(long, value_name = "PROVIDER", conflicts_with = "password_stdin")]
    oidc: Option<String>,
    /// With --oidc: sign in in this machine's browser instead (opened with $BROWSER or the
    /// desktop's default; the provider sends it back to the viewer on 127.0.0.1).
    #[arg(long, requires = "oidc")]
    browser: bool,
    /// One JSON object per line on stdout for each event (per decoded frame included).
    #[arg(long)]
    json: bool,
    /// End the session normally after this many decoded frames.
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Write the last decoded frame as PNG when the session ends.
    #[arg(long, value_name = "FILE")]
    save_frame: Option<PathBuf>,
    /// Ask the customer for control and play an input script (clicks, typing) once they
    /// allow it; needs the control permission.
    #[arg(long, value_name = "FILE")]
    send_input: Option<PathBuf>,
    /// Ask the customer for control once they allow viewing (without a script); needs the
    /// control permission.
    #[arg(long)]
    request_control: bool,
}

fn main() -> ExitCode {
    cli::init_logging();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Session(ref args)) => {
            let out = Output::new(args.json);
            cli::run_main_with("viewer", out, session(cli, out), error_status)
        }
        Some(Command::Export(ref args)) => exit_status(recording_cli::export(args).map(|()| true)),
        Some(Command::Play(ref args)) => exit_status(recording_cli::play(args)),
        Some(Command::VerifyUpdate(ref args)) => verify_update::run(args),
        None => match open_window(cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("viewer: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Exit status of `viewer export` and `viewer play`: 0 when it worked (and, with --verify,
/// the recording holds), else 1 with the error on stderr.
fn exit_status(result: Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(cli::exit::FAILED),
        Err(e) => {
            eprintln!("viewer: error: {e:#}");
            ExitCode::from(cli::exit::FAILED)
        }
    }
}

/// Exit status of a failed `viewer session`: a kiosk that refused this operator is a refusal
/// (as a customer's no is), everything else a failure.
fn error_status(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<headless::HeadlessError>() {
        Some(headless::HeadlessError::Refused(_)) => cli::exit::REFUSED,
        _ => cli::exit::FAILED,
    }
}

/// Reads and checks an input script (`--send-input`).
fn load_script(path: Option<&std::path::Path>) -> Result<Option<Vec<script::Step>>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the input script {}", path.display()))?;
    Ok(Some(script::parse(&text)?))
}

/// What `--accept-new-agent-key` and `--agent-key` say about a direct connection's agent key.
fn agent_key_policy(agent_key: Option<Fingerprint>, accept_new: bool) -> AgentKeyPolicy {
    match (agent_key, accept_new) {
        (Some(fp), _) => AgentKeyPolicy::Expect(fp),
        (None, true) => AgentKeyPolicy::AcceptNew,
        (None, false) => AgentKeyPolicy::KnownOnly,
    }
}

fn open_window(cli: Cli) -> Result<()> {
    let script = load_script(cli.send_input.as_deref())?;
    let agent_key = agent_key_policy(cli.agent_key, cli.accept_new_agent_key);
    let config = ClientConfig::load("viewer", cli.config.as_deref())?;
    let data_dir = cli::data_dir("viewer", cli.data_dir)?;
    let proxy = config.proxy(cli.relay.proxy)?;
    let relay_key = cli.relay.relay_key.or(config.relay_key);
    // With --direct and a valid stored certificate, --password-stdin connects at once and reads
    // nothing: no relay login is needed.
    let direct_at_once = cli.password_stdin
        && cli.direct.is_some()
        && direct::inspect_store(&data_dir, pinned_key(relay_key.as_deref())?.as_ref()).is_ok();
    let (password, second_factor) = if cli.password_stdin && !direct_at_once {
        let c = read_credentials(true)?;
        (Some(c.password), c.second_factor)
    } else {
        (None, None)
    };
    gui::run(gui::Options {
        relay: cli.relay.relay.or(config.relay),
        proxy,
        relay_key,
        user: cli.relay.user,
        password,
        second_factor,
        direct: cli.direct,
        provider: cli.sign_in_with,
        record: cli.record,
        direct_at_once,
        agent_key,
        data_dir,
        json: cli.json,
        script,
    })?;
    Ok(())
}

/// The pinned relay key from a flag or the config file, if any.
fn pinned_key(hex: Option<&str>) -> Result<Option<Fingerprint>> {
    hex.map(|h| {
        h.parse::<Fingerprint>()
            .map_err(|e| anyhow!("--relay-key: {e}"))
    })
    .transpose()
}

/// Password and second factor: two lines of stdin, or two prompts on the terminal.
fn read_credentials(from_stdin: bool) -> Result<Credentials> {
    Ok(if from_stdin {
        credentials::read_from(std::io::stdin().lock())?
    } else {
        credentials::prompt()?
    })
}

async fn session(cli: Cli, out: Output) -> Result<SessionEnd> {
    let Some(Command::Session(args)) = cli.command else {
        return Err(anyhow!("no session command"));
    };
    let config = ClientConfig::load("viewer", cli.config.as_deref())?;
    let data_dir = cli::data_dir("viewer", cli.data_dir)?;
    let script = load_script(args.send_input.as_deref())?;
    // Headless: a first connection is refused unless a flag accepts the key.
    let agent_key = AgentKeyCheck {
        policy: agent_key_policy(cli.agent_key, cli.accept_new_agent_key),
        ask: false,
    };
    let start = match cli.direct {
        None => {
            let (relay, relay_key) =
                config.relay_target(cli.relay.relay, cli.relay.relay_key, cli.relay.proxy)?;
            let (
                user,
                Credentials {
                    password,
                    second_factor,
                },
            ) = match &args.oidc {
                // The provider signs the operator in; nothing to read here.
                Some(_) => (
                    String::new(),
                    Credentials {
                        password: sightline_core::relay_proto::Secret::new(""),
                        second_factor: None,
                    },
                ),
                None => (
                    cli.relay
                        .user
                        .ok_or_else(|| anyhow!("--user NAME is required (or --oidc PROVIDER)"))?,
                    read_credentials(args.password_stdin)?,
                ),
            };
            Start::Relay(SessionParams {
                relay,
                relay_key,
                user,
                password,
                second_factor,
                // Set by the headless session when it plays an input script.
                require_control: false,
                data_dir,
                direct: None,
                agent_key,
                record: cli.record,
                oidc: args.oidc.map(|provider| OidcLogin {
                    provider,
                    in_browser: args.browser,
                }),
            })
        }
        Some(address) => {
            let address: DirectAddress = address.parse().map_err(|e| anyhow!("--direct: {e}"))?;
            let target = (address, agent_key);
            direct_start(cli.relay, &config, target, data_dir, args.password_stdin).await?
        }
    };
    let opts = headless::Options {
        frames: args.frames,
        save_frame: args.save_frame,
        script,
        request_control: args.request_control,
    };
    Ok(headless::run(start, opts, out).await?)
}

/// `viewer session --direct`: the stored certificate when it is valid, else a relay login
/// first when the relay and the user are known, else the error that says how to get one.
async fn direct_start(
    relay: RelayArgs,
    config: &ClientConfig,
    target: (DirectAddress, AgentKeyCheck),
    data_dir: PathBuf,
    password_stdin: bool,
) -> Result<Start> {
    let (address, agent_key) = target;
    let relay_known = relay.relay.is_some() || config.relay.is_some();
    let key_hex = relay.relay_key.clone().or_else(|| config.relay_key.clone());
    let pinned = pinned_key(key_hex.as_deref())?;
    let can_log_in = relay_known && relay.user.is_some();
    let dir = data_dir.clone();
    let stored = tokio::task::spawn_blocking(move || direct::inspect_store(&dir, pinned.as_ref()))
        .await
        .map_err(|e| anyhow!("certificate check failed: {e}"))?;
    match direct::choose_certificate(stored, can_log_in).map_err(|e| anyhow!(e))? {
        CertificateChoice::Stored(stored, _) => Ok(Start::Direct(DirectParams {
            address,
            stored,
            require_control: false,
            data_dir,
            agent_key,
        })),
        CertificateChoice::Login(why) => {
            let Some(user) = relay.user else {
                return Err(anyhow!(direct::NO_CERTIFICATE));
            };
            // Only now are the relay settings needed, and checked.
            let (relay, relay_key) =
                config.relay_target(relay.relay, relay.relay_key, relay.proxy)?;
            tracing::info!("{why}; logging in to the relay first");
            if !password_stdin {
                eprintln!("Direct connection: {why}; log in to the relay for a new one.");
            }
            let Credentials {
                password,
                second_factor,
            } = read_credentials(password_stdin)?;
            Ok(Start::Relay(SessionParams {
                relay,
                relay_key,
                user,
                password,
                second_factor,
                require_control: false,
                data_dir,
                direct: Some(address),
                agent_key,
                record: false,
                oidc: None,
            }))
        }
    }
}

//! `viewer`: the operator's program. Without a subcommand it opens the window (log in, read
//! the code to the customer, see and control their screen); `viewer session` runs the same
//! session headless for automation and tests.

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use sightline_net::cli::{self, ClientConfig, Output};
use sightline_net::session::SessionEnd;
use sightline_viewer::client::SessionParams;
use sightline_viewer::credentials::{self, Credentials};
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
  printf '%s\\n%s\\n' \"$PASSWORD\" \"$CODE\" | viewer session --relay 127.0.0.1:7615 \\
      --relay-key 3f5e...c2 --user alice --password-stdin --json --frames 100 --save-frame last.png

With --password-stdin, standard input holds the password on its first line and the second
factor (the 6-digit code from your authenticator app, or a recovery code) on its second; an
empty or missing second line means none (accounts without two-factor login). Without it,
`viewer session` asks for both on the terminal.")]
struct Cli {
    /// Directory for the operator's identity key (default: the platform data dir + /viewer).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (default: the platform config dir + /viewer.toml, if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    relay: RelayArgs,
    /// Window mode: read the password (first line) and the authenticator or recovery code
    /// (second line, empty for none) from stdin and log in at once (for kiosks and tests).
    #[arg(long)]
    password_stdin: bool,
    /// Window mode: also print events as JSON lines on stdout (code, connected, closed).
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct RelayArgs {
    /// Relay address HOST:PORT (default port 7615).
    #[arg(long, global = true, value_name = "ADDR")]
    relay: Option<String>,
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
}

#[derive(Args, Debug)]
struct SessionArgs {
    /// Read the password from the first line of standard input and the authenticator or
    /// recovery code from the second (empty or missing: none) instead of prompting.
    #[arg(long)]
    password_stdin: bool,
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
            let out = Output { json: args.json };
            cli::run_main("viewer", out, session(cli, out))
        }
        None => match open_window(cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("viewer: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn open_window(cli: Cli) -> Result<()> {
    let config = ClientConfig::load("viewer", cli.config.as_deref())?;
    let data_dir = cli::data_dir("viewer", cli.data_dir)?;
    let (password, second_factor) = if cli.password_stdin {
        let c = read_credentials(true)?;
        (Some(c.password), c.second_factor)
    } else {
        (None, None)
    };
    gui::run(gui::Options {
        relay: cli.relay.relay.or(config.relay),
        relay_key: cli.relay.relay_key.or(config.relay_key),
        user: cli.relay.user,
        password,
        second_factor,
        data_dir,
        json: cli.json,
    })?;
    Ok(())
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
    let (relay, relay_key) = config.relay(cli.relay.relay, cli.relay.relay_key)?;
    let user = cli
        .relay
        .user
        .ok_or_else(|| anyhow!("--user NAME is required"))?;
    let script = match &args.send_input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the input script {}", path.display()))?;
            Some(script::parse(&text)?)
        }
        None => None,
    };
    let Credentials {
        password,
        second_factor,
    } = read_credentials(args.password_stdin)?;
    let params = SessionParams {
        relay,
        relay_key,
        user,
        password,
        second_factor,
        // Set by the headless session when it plays an input script.
        require_control: false,
        data_dir: cli::data_dir("viewer", cli.data_dir)?,
    };
    let opts = headless::Options {
        frames: args.frames,
        save_frame: args.save_frame,
        script,
        request_control: args.request_control,
    };
    Ok(headless::run(params, opts, out).await?)
}

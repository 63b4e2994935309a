//! `relay`: the Sightline relay's command line. Parses flags, reads passwords, prints results;
//! the work is done by the `sightline_relay` library.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::db::Database;
use sightline_relay::password::PasswordPolicy;
use sightline_relay::paths::DataDir;
use sightline_relay::signal::Shutdown;
use sightline_relay::users::{self, NewUser};
use sightline_relay::{init, listing, server};
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use zeroize::Zeroizing;

const MAIN_EXAMPLES: &str = "\
Examples:
  relay init                                  create the CA key and database, print the fingerprint
  relay user add alice --display-name 'Alice Smith' --org 'Example Help Desk'
  relay serve                                 listen on 0.0.0.0:7615
  relay --data-dir /srv/sightline serve --listen 0.0.0.0:7615 --listen [::]:7615

Files (in the data directory, owner-only permissions):
  ca-key.pem   the relay's RSA-4096 CA key (PKCS#8 PEM, mode 0600); back it up
  relay.db     accounts and brute-force counters (SQLite, mode 0600)
  relay.toml   optional configuration (see assets/relay.example.toml)";

const INIT_EXAMPLES: &str = "\
Output: the last line of standard output is the key fingerprint alone (64 hex digits), so
scripts can take it with `tail -n 1`. Pin it in viewers and agents.

Examples:
  relay init
  PIN=$(relay --data-dir /srv/sightline init --quiet)";

const FINGERPRINT_EXAMPLES: &str = "\
Examples:
  relay fingerprint
  relay --data-dir /srv/sightline fingerprint";

const USER_EXAMPLES: &str = "\
Examples:
  relay user add alice
  relay user list
  relay user remove alice";

const USER_ADD_EXAMPLES: &str = "\
Passwords need at least 12 characters and must differ from the user name. Without
--password-stdin the password is asked twice on the terminal.

Examples:
  relay user add alice
  relay user add alice --display-name 'Alice Smith' --org 'Example Help Desk'
  printf '%s\\n' \"$PASSWORD\" | relay user add alice --password-stdin";

const USER_LIST_EXAMPLES: &str = "\
Examples:
  relay user list
  relay user list --json";

const USER_REMOVE_EXAMPLES: &str = "\
Examples:
  relay user remove alice";

const SERVE_EXAMPLES: &str = "\
Prints one line `listening on ADDR` per address once it accepts connections (with port 0,
ADDR shows the port chosen). Logs go to standard error; set RUST_LOG to change the level
(default info). SIGINT or SIGTERM stops the relay.

Examples:
  relay serve
  relay serve --listen 127.0.0.1:7615 --listen [::1]:7615
  relay serve --config /etc/sightline/relay.toml --log-json
  RUST_LOG=debug relay serve --listen 127.0.0.1:0";

/// The Sightline relay: pairs operators and customers by one-time code and forwards their
/// end-to-end-encrypted sessions; keeps operator accounts and the relay CA.
#[derive(Debug, Parser)]
#[command(name = "relay", version, after_help = MAIN_EXAMPLES)]
struct Cli {
    /// Data directory (CA key, database, relay.toml) [default: the platform's data directory
    /// for sightline, then relay]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "SIGHTLINE_RELAY_DATA_DIR"
    )]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory, the RSA-4096 CA key and the database; print the fingerprint.
    #[command(after_help = INIT_EXAMPLES)]
    Init {
        /// Print only the fingerprint.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print the CA key's fingerprint (64 hex digits) alone on one line.
    #[command(after_help = FINGERPRINT_EXAMPLES)]
    Fingerprint,
    /// Manage operator accounts.
    #[command(after_help = USER_EXAMPLES)]
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Run the relay.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an operator account.
    #[command(after_help = USER_ADD_EXAMPLES)]
    Add(UserAddArgs),
    /// List operator accounts.
    #[command(after_help = USER_LIST_EXAMPLES)]
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an operator account.
    #[command(after_help = USER_REMOVE_EXAMPLES)]
    Remove {
        /// Account name.
        name: String,
    },
}

#[derive(Debug, Args)]
struct UserAddArgs {
    /// Account name: 1 to 64 characters from A-Z a-z 0-9 . _ @ -
    name: String,
    /// Read the password as one line from standard input instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
    /// Name shown to customers [default: the account name]
    #[arg(long, value_name = "TEXT")]
    display_name: Option<String>,
    /// Organisation shown to customers.
    #[arg(long, value_name = "TEXT")]
    org: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; repeat for several [default: 0.0.0.0:7615, or `listen` in the
    /// configuration]
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// Configuration file [default: relay.toml in the data directory, if present]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping causes that a message already quotes
/// (many errors here include their source's text, and also expose it as the source).
fn render(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn run(cli: Cli) -> Result<()> {
    let data = match cli.data_dir {
        Some(dir) => DataDir::new(dir),
        None => DataDir::platform_default()
            .context("no home directory to put the data directory in; pass --data-dir")?,
    };
    match cli.command {
        Command::Init { quiet } => cmd_init(&data, quiet),
        Command::Fingerprint => {
            let ca = init::load_ca(&data)?;
            println!("{}", ca.public().fingerprint());
            Ok(())
        }
        Command::User { command } => match command {
            UserCommand::Add(args) => cmd_user_add(&data, args),
            UserCommand::List { json } => cmd_user_list(&data, json),
            UserCommand::Remove { name } => {
                let db = Database::open(&data.database())?;
                users::remove(&db, &name)?;
                println!("removed user {name}");
                Ok(())
            }
        },
        Command::Serve(args) => cmd_serve(&data, args),
    }
}

fn cmd_init(data: &DataDir, quiet: bool) -> Result<()> {
    init::ensure_no_key(data)?;
    if !quiet {
        eprintln!("generating the RSA-4096 CA key (this takes a few seconds)...");
    }
    let done = init::init(data)?;
    if !quiet {
        println!("created relay CA key: {}", data.ca_key().display());
        let db = if done.created_database {
            "created database"
        } else {
            "kept database"
        };
        println!("{db}: {}", data.database().display());
        println!("relay key fingerprint (pin it in viewers and agents):");
    }
    println!("{}", done.fingerprint);
    Ok(())
}

/// Reads the new password: one line from stdin, or twice from the terminal.
fn read_new_password(name: &str, from_stdin: bool) -> Result<Zeroizing<String>> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read standard input")?;
        if n == 0 {
            bail!("no password on standard input");
        }
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        return Ok(Zeroizing::new(trimmed.to_string()));
    }
    let prompt = |text: &str| -> Result<Zeroizing<String>> {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .context("cannot read the password from the terminal (use --password-stdin)")
    };
    let first = prompt(&format!("password for {name}: "))?;
    // Say what is wrong before asking to repeat it.
    PasswordPolicy::DEFAULT.check(name, &first)?;
    let second = prompt("repeat the password: ")?;
    if *first != *second {
        bail!("the passwords do not match; nothing was changed");
    }
    Ok(first)
}

fn cmd_user_add(data: &DataDir, args: UserAddArgs) -> Result<()> {
    users::validate_name(&args.name)?;
    let db = Database::open(&data.database())?;
    let password = read_new_password(&args.name, args.password_stdin)?;
    let new = NewUser {
        name: &args.name,
        password: &password,
        display_name: args.display_name.as_deref(),
        organisation: args.org.as_deref(),
        now: sightline_net::clock::now_unix(),
    };
    users::add(&db, new, &PasswordPolicy::DEFAULT)?;
    println!("added user {}", args.name);
    Ok(())
}

fn cmd_user_list(data: &DataDir, json: bool) -> Result<()> {
    let db = Database::open(&data.database())?;
    let all = users::list(&db)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &listing::json(&all))?;
        writeln!(out)?;
    } else {
        out.write_all(listing::table(&all).as_bytes())?;
    }
    Ok(())
}

fn init_logging(json: bool) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var_os("RUST_LOG") {
        Some(_) => EnvFilter::try_from_default_env().context("invalid RUST_LOG")?,
        None => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    }
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

fn cmd_serve(data: &DataDir, args: ServeArgs) -> Result<()> {
    init_logging(args.log_json)?;
    let (mut config, config_file) =
        Config::load_or_default(args.config.as_deref(), &data.config())?;
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    let ca = init::load_ca(data)?;
    let db = Database::open(&data.database())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
        let fingerprint = ca.public().fingerprint();
        let relay = Relay::new(config, ca, db).await?;
        let listeners = server::bind(&relay.config.listen).await?;
        let mut out = std::io::stdout().lock();
        for l in &listeners {
            writeln!(out, "listening on {}", l.local_addr()?)?;
        }
        out.flush()?;
        drop(out);
        tracing::info!(
            %fingerprint,
            config = %config_file.as_ref().map_or("(defaults)".into(), |p| p.display().to_string()),
            data_dir = %data.root().display(),
            "relay started"
        );
        server::serve(relay, listeners, async move {
            let signal = shutdown.wait().await;
            tracing::info!(signal, "stopping");
        })
        .await;
        Ok::<_, anyhow::Error>(())
    })?;
    // Connection tasks still running are dropped with the runtime; do not wait for peers.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {what}: {source}")]
    struct Quoting {
        what: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn render_skips_causes_already_quoted() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::from(Quoting {
            what: "relay.db",
            source: io,
        });
        assert_eq!(render(&e), "cannot open relay.db: no such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&e), "outer: inner");
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let mut stack = vec![cli];
        while let Some(cmd) = stack.pop() {
            if cmd.get_name() != "help" {
                let after = cmd
                    .get_after_help()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                assert!(
                    after.contains("Examples:"),
                    "{} has no examples",
                    cmd.get_name()
                );
            }
            stack.extend(cmd.get_subcommands().cloned());
        }
    }
}

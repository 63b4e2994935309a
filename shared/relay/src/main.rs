//! `relay`: the Sightline relay's command line. Parses flags, reads passwords, prints results;
//! the work is done by the `sightline_relay` library. The certificate authority's commands
//! live in [`cli_ca`], the audit log's in [`cli_audit`], the session record's in [`cli_sessions`],
//! the session recordings' in [`cli_recordings`], the data inventory in [`cli_data`], the
//! preconfigured agent in [`cli_bundle`].

mod cli_audit;
mod cli_bundle;
mod cli_ca;
mod cli_data;
mod cli_recordings;
mod cli_sessions;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use sightline_core::cert::{Permissions, RecordingMode};
use sightline_relay::accounts::auth::Role;
use sightline_relay::accounts::password::PasswordPolicy;
use sightline_relay::accounts::users::{self, Changes, Enrolment, NewUser, Source};
use sightline_relay::accounts::{listing, totp};
use sightline_relay::authority::{ca, issuing};
use sightline_relay::config::Config;
use sightline_relay::context::Relay;
use sightline_relay::net::signal::Shutdown;
use sightline_relay::net::{fd_limit, server};
use sightline_relay::policy::{recording, Policy};
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use sightline_relay::store::{audit, init};
use sightline_relay::syslog;
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const MAIN_EXAMPLES: &str = "\
Examples:
  relay init                                  create the CA keys and database, print the fingerprint
  relay init --offline-ca /media/usb/sightline-ca
                                              the same, with the root key on removable media
  relay user add alice --display-name 'Alice Smith' --org 'Example Help Desk'
                                              prints the authenticator QR code and recovery codes
  relay serve                                 listen on 0.0.0.0:7615
  relay --data-dir /srv/sightline serve --listen 0.0.0.0:7615 --listen [::]:7615

Files (in the data directory, owner-only permissions):
  ca-key.pem       the relay's RSA-4096 root CA key, the one clients pin (PKCS#8 PEM, mode 0600);
                   back it up. Absent with --offline-ca: it stays on the offline medium
  issuer-key.pem   the issuing key that signs certificates (replaced by `relay ca rotate`)
  issuer-cert.bin  its certificate from the root key
  relay.db     accounts, TOTP secrets, issued certificates, counters and audit log (SQLite, mode 0600)
  audit.key    the audit log's Ed25519 signing key (PKCS#8 PEM, mode 0600); `relay audit key`
               prints its public half
  recordings/  session recordings, <session id>.age, encrypted by the viewer to the auditors'
               age keys; the relay cannot read them (directory 0700, files 0600)
  relay.toml   optional configuration (see assets/relay.example.toml)
  policy.toml  optional help-desk policy (see assets/policy.example.toml), including how long
               stored records are kept; `relay data inventory` lists what is stored";

const INIT_EXAMPLES: &str = "\
Makes the root key (the one clients pin) and a first issuing key certified by it. With
--offline-ca DIR the root key is written to DIR only (removable media, or copy it to another
machine and delete it here): the data directory then holds the issuing key alone, and new
issuing keys are certified there (see `relay ca --help`).

Output: the last line of standard output is the root key fingerprint alone (64 hex digits), so
scripts can take it with `tail -n 1`. Pin it in viewers and agents.

Examples:
  relay init
  relay init --offline-ca /media/usb/sightline-ca
  PIN=$(relay --data-dir /srv/sightline init --quiet)";

const FINGERPRINT_EXAMPLES: &str = "\
Examples:
  relay fingerprint
  relay --data-dir /srv/sightline fingerprint";

const USER_EXAMPLES: &str = "\
Examples:
  relay user add alice
  relay user list
  relay user show alice
  relay user set alice --permissions view --session-limit 60
  relay user disable alice
  relay user passwd alice
  relay user reset-2fa alice
  relay user remove alice";

const USER_ADD_EXAMPLES: &str = "\
The password policy (policy.toml) applies: by default at least 12 characters, not the user
name, not a common password. Without --password-stdin the password is asked twice on the
terminal. Two-factor login is enrolled at once: the command prints an otpauth:// URI, a QR code
for an authenticator app and ten one-time recovery codes; they are shown only now.

Examples:
  relay user add alice
  relay user add alice --display-name 'Alice Smith' --org 'Example Help Desk'
  relay user add carol --role admin
  relay user add dave --permissions view --session-limit 30
  relay user add erin --ldap                  password checked by the LDAP directory
  relay user add frank --oidc corp            signs in with relay.toml's [[oidc]] \"corp\"
  relay user add frank --oidc corp --config /etc/sightline/relay.toml
  printf '%s\\n' \"$PASSWORD\" | relay user add alice --password-stdin --json

With --oidc PROVIDER the account has no password and no authenticator here: the operator signs
in with `viewer session --oidc PROVIDER`, and the provider's second factor counts. The first
sign-in records who the user is at the provider (issuer and subject); another user who later
has the same name there is refused. PROVIDER must be an [[oidc]] table of the configuration
(relay.toml in the data directory, or --config FILE).";

const USER_LIST_EXAMPLES: &str = "\
Examples:
  relay user list
  relay user list --json";

const USER_SHOW_EXAMPLES: &str = "\
Shows the account's settings and what the policy lets it do, never its secrets.

Examples:
  relay user show alice
  relay user show alice --json";

const USER_SET_EXAMPLES: &str = "\
Per-operator settings can only narrow the policy: the operator gets the permissions both allow,
the shorter session limit and the stricter recording mode (off < optional < required). A
recording mode other than off needs recipients in the policy's [recording] section.

Examples:
  relay user set alice --permissions view
  relay user set alice --permissions all --session-limit policy
  relay user set alice --recording required
  relay user set alice --role admin --display-name 'Alice Smith'
  relay user set alice --oidc corp            from now on signs in with [[oidc]] \"corp\"

--oidc PROVIDER links the account to an identity provider: a password account loses its
password, authenticator and recovery codes; an account already linked forgets the user
recorded at its first sign-in, so that the next sign-in records it again (a person whose
subject at the provider changed).";

const USER_DISABLE_EXAMPLES: &str = "\
A disabled account cannot log in or start sessions, from the next request on.

Examples:
  relay user disable alice
  relay user enable alice";

const USER_REMOVE_EXAMPLES: &str = "\
Examples:
  relay user remove alice";

const USER_PASSWD_EXAMPLES: &str = "\
The password policy applies, including the history: none of the last passwords (5 by default).

Examples:
  relay user passwd alice
  printf '%s\\n' \"$PASSWORD\" | relay user passwd alice --password-stdin";

const USER_RESET_2FA_EXAMPLES: &str = "\
Replaces the account's authenticator secret and recovery codes (a lost phone); the old ones
stop working at once. Prints the new QR code and codes.

Examples:
  relay user reset-2fa alice
  relay user reset-2fa alice --json";

const SERVE_EXAMPLES: &str = "\
Prints one line `listening on ADDR` per listener, in configuration order, once it accepts
connections (with port 0, ADDR shows the port chosen). Logs go to standard error; set RUST_LOG
to change the level (default info). SIGINT or SIGTERM stops the relay; SIGHUP reloads the TLS
certificates of `[[listener]]` tables.

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

    /// Policy file [default: policy.toml in the data directory, if present]
    #[arg(long, global = true, value_name = "FILE")]
    policy: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory, the RSA-4096 root CA key, a first issuing key and the
    /// database; print the root fingerprint.
    #[command(after_help = INIT_EXAMPLES)]
    Init {
        /// Print only the fingerprint.
        #[arg(long, short)]
        quiet: bool,
        /// Write the root key to this directory instead of the data directory (created with
        /// mode 0700 when missing).
        #[arg(long, value_name = "DIR")]
        offline_ca: Option<PathBuf>,
        /// Validity of the first issuing key's certificate, days (1 to 400).
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        issuer_days: u64,
    },
    /// Print the root CA key's fingerprint (64 hex digits) alone on one line.
    #[command(after_help = FINGERPRINT_EXAMPLES)]
    Fingerprint,
    /// The certificate authority: status, rotation of the issuing key, offline root key.
    #[command(after_help = cli_ca::CA_EXAMPLES)]
    Ca {
        #[command(subcommand)]
        command: cli_ca::CaCommand,
    },
    /// Issued operator certificates: list, revoke.
    #[command(after_help = cli_ca::CERT_EXAMPLES)]
    Cert {
        #[command(subcommand)]
        command: cli_ca::CertCommand,
    },
    /// Write the agent preconfigured for this help desk: customers type only the code.
    #[command(name = "agent-bundle", after_help = cli_bundle::BUNDLE_EXAMPLES)]
    AgentBundle(cli_bundle::BundleArgs),
    /// Write the current revocation list, signed, for LAN-only kiosks.
    #[command(after_help = cli_ca::CRL_EXAMPLES)]
    Crl {
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Manage operator accounts.
    #[command(after_help = USER_EXAMPLES)]
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Show, export or verify the audit log.
    #[command(after_help = cli_audit::AUDIT_EXAMPLES)]
    Audit(cli_audit::AuditArgs),
    /// Show the newest relayed sessions.
    #[command(after_help = cli_sessions::SESSIONS_EXAMPLES)]
    Sessions(cli_sessions::SessionsArgs),
    /// Session recordings: list them, copy one out for the auditors.
    #[command(after_help = cli_recordings::RECORDINGS_EXAMPLES)]
    Recordings {
        #[command(subcommand)]
        command: cli_recordings::RecordingsCommand,
    },
    /// What the relay stores about people and sessions, and for how long.
    #[command(after_help = cli_data::DATA_EXAMPLES)]
    Data {
        #[command(subcommand)]
        command: cli_data::DataCommand,
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
    /// Show one account.
    #[command(after_help = USER_SHOW_EXAMPLES)]
    Show {
        /// Account name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change an account's role, labels, permissions or session limit.
    #[command(after_help = USER_SET_EXAMPLES)]
    Set(UserSetArgs),
    /// Disable an account: no logins, no sessions; its certificates are revoked.
    #[command(after_help = USER_DISABLE_EXAMPLES)]
    Disable {
        /// Account name.
        name: String,
    },
    /// Enable a disabled account.
    #[command(after_help = USER_DISABLE_EXAMPLES)]
    Enable {
        /// Account name.
        name: String,
    },
    /// Remove an operator account; its certificates are revoked.
    #[command(after_help = USER_REMOVE_EXAMPLES)]
    Remove {
        /// Account name.
        name: String,
    },
    /// Set a new password.
    #[command(after_help = USER_PASSWD_EXAMPLES)]
    Passwd {
        /// Account name.
        name: String,
        /// Read the password as one line from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Enrol a new authenticator and recovery codes, invalidating the old ones.
    #[command(name = "reset-2fa", after_help = USER_RESET_2FA_EXAMPLES)]
    Reset2fa {
        /// Account name.
        name: String,
        /// Print the enrolment as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct UserAddArgs {
    /// Account name: 1 to 64 characters from A-Z a-z 0-9 . _ @ -
    name: String,
    /// Read the password as one line from standard input instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
    /// Name shown to customers: plain text, at most 64 characters, no control characters,
    /// escape sequences, line breaks or text-direction characters [default: the account name]
    #[arg(long, value_name = "TEXT")]
    display_name: Option<String>,
    /// Organisation shown to customers (same rules as --display-name).
    #[arg(long, value_name = "TEXT")]
    org: Option<String>,
    /// Role: operator, or admin (recorded and shown; grants nothing more today: accounts
    /// are managed with `relay user` by whoever can read the relay's data directory).
    #[arg(long, value_name = "ROLE", default_value = "operator")]
    role: String,
    /// Narrow the policy's permissions for this operator: a comma-separated list of view,
    /// control, clipboard, file-transfer, or `all` [default: all the policy allows]
    #[arg(long, value_name = "LIST")]
    permissions: Option<String>,
    /// Own session limit in minutes (the policy's limit applies when shorter).
    #[arg(long, value_name = "MINUTES")]
    session_limit: Option<u64>,
    /// The password is checked by the LDAP directory (relay.toml [ldap]); no password here.
    #[arg(long, conflicts_with = "password_stdin")]
    ldap: bool,
    /// Signs in with this identity provider (an [[oidc]] table's name in relay.toml): no
    /// password, no authenticator at the relay.
    #[arg(long, value_name = "PROVIDER", conflicts_with_all = ["password_stdin", "ldap", "no_2fa"])]
    oidc: Option<String>,
    /// The configuration to check --oidc against [default: relay.toml in the data directory]
    #[arg(long, value_name = "FILE", requires = "oidc")]
    config: Option<PathBuf>,
    /// No two-factor login (only when the policy's two_factor.mode is "optional").
    #[arg(long)]
    no_2fa: bool,
    /// Print the result (with the enrolment) as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct UserSetArgs {
    /// Account name.
    name: String,
    /// New role: operator or admin.
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    /// New display name (an empty text clears it); same rules as for `user add`.
    #[arg(long, value_name = "TEXT")]
    display_name: Option<String>,
    /// New organisation (an empty text clears it); same rules as for `user add`.
    #[arg(long, value_name = "TEXT")]
    org: Option<String>,
    /// New permission list (view, control, clipboard, file-transfer), or `all`.
    #[arg(long, value_name = "LIST")]
    permissions: Option<String>,
    /// New session limit in minutes, or `policy` to follow the policy.
    #[arg(long, value_name = "MINUTES")]
    session_limit: Option<String>,
    /// Own recording mode: off (follow the policy), optional or required; the stricter of it
    /// and the policy's applies, so it can only make recording stricter.
    #[arg(long, value_name = "MODE")]
    recording: Option<String>,
    /// Sign in with this identity provider from now on (an [[oidc]] table's name): removes a
    /// password and authenticator; forgets the user recorded at the provider.
    #[arg(long, value_name = "PROVIDER")]
    oidc: Option<String>,
    /// The configuration to check --oidc against [default: relay.toml in the data directory]
    #[arg(long, value_name = "FILE", requires = "oidc")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on with plain TCP; repeat for several; replaces `listen` and the
    /// `[[listener]]` tables of the configuration [default: 0.0.0.0:7615, or the configuration's]
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
        // `relay audit verify` has printed what is wrong.
        Err(e) if e.is::<cli_audit::VerifyFailed>() => std::process::ExitCode::FAILURE,
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
    let policy_file = cli.policy;
    let policy = || -> Result<Policy> {
        Ok(Policy::load_or_default(policy_file.as_deref(), &data.policy())?.0)
    };
    match cli.command {
        Command::Init {
            quiet,
            offline_ca,
            issuer_days,
        } => cmd_init(&data, quiet, offline_ca.as_deref(), issuer_days),
        Command::Fingerprint => {
            println!("{}", ca::root_fingerprint(&data)?);
            Ok(())
        }
        Command::Ca { command } => cli_ca::run_ca(&data, command),
        Command::Cert { command } => cli_ca::run_cert(&data, command),
        Command::Crl { out } => cli_ca::run_crl(&data, &out),
        Command::AgentBundle(args) => cli_bundle::run(&data, args),
        Command::User { command } => match command {
            UserCommand::Add(args) => cmd_user_add(&data, &policy()?, args),
            UserCommand::List { json } => cmd_user_list(&data, json),
            UserCommand::Show { name, json } => cmd_user_show(&data, &policy()?, &name, json),
            UserCommand::Set(args) => cmd_user_set(&data, &policy()?, args),
            UserCommand::Disable { name } => cmd_user_disable(&data, &name, true),
            UserCommand::Enable { name } => cmd_user_disable(&data, &name, false),
            UserCommand::Remove { name } => {
                let mut db = Database::open(&data.database())?;
                users::remove(&db, &name)?;
                audit_change(&db, "user.remove", &name, None)?;
                println!("removed user {name}");
                cli_ca::revoke_account(&mut db, &name, "account removed")?;
                Ok(())
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => cmd_user_passwd(&data, &policy()?, &name, password_stdin),
            UserCommand::Reset2fa { name, json } => {
                cmd_user_reset_2fa(&data, &policy()?, &name, json)
            }
        },
        Command::Audit(args) => cli_audit::run(&data, args),
        Command::Sessions(args) => cli_sessions::run(&data, &args),
        Command::Recordings { command } => cli_recordings::run(&data, &command),
        Command::Data { command } => cli_data::run(&data, &policy()?, &command),
        Command::Serve(args) => {
            let policy = Policy::load_or_default(policy_file.as_deref(), &data.policy())?;
            cmd_serve(&data, policy, args)
        }
    }
}

/// Records an account change made on the command line.
fn audit_change(db: &Database, action: &str, subject: &str, detail: Option<&str>) -> Result<()> {
    audit::record(
        db,
        sightline_net::clock::now_unix(),
        "cli",
        action,
        Some(subject),
        detail,
    )?;
    Ok(())
}

fn parse_role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| users::UserError::InvalidRole(text.to_string()).into())
}

/// Parses `all` or a comma-separated list of permission names.
fn parse_permissions(text: &str) -> Result<Permissions> {
    if text.trim() == "all" {
        return Ok(users::DEFAULT_PERMISSIONS);
    }
    let mut set = Permissions::NONE;
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let p = Permissions::from_name(name).with_context(|| {
            format!(
                "unknown permission {name:?}; use view, control, clipboard, file-transfer or all"
            )
        })?;
        set = set.union(p);
    }
    Ok(set)
}

fn session_limit_secs(minutes: u64) -> Result<u64> {
    if minutes == 0 || minutes > sightline_relay::policy::MAX_SESSION_MINUTES {
        bail!(
            "session limit must be between 1 and {} minutes",
            sightline_relay::policy::MAX_SESSION_MINUTES
        );
    }
    Ok(minutes * 60)
}

/// Says which asked-for permissions the policy does not allow (they have no effect).
fn warn_beyond_policy(policy: &Policy, asked: Permissions) {
    let beyond = Permissions(asked.0 & !policy.allowed().0);
    if asked != users::DEFAULT_PERMISSIONS && !beyond.names().is_empty() {
        eprintln!(
            "note: the policy does not allow {}; the operator will not get it",
            beyond.names().join(", ")
        );
    }
}

/// Prints a new enrolment: QR code, URI and recovery codes, or JSON.
fn print_enrolment(
    policy: &Policy,
    name: &str,
    e: &Enrolment,
    json: bool,
) -> Result<serde_json::Value> {
    let uri = totp::otpauth_uri(&e.secret, &policy.two_factor.issuer, name)?;
    let codes: Vec<&str> = e.recovery_codes.iter().map(|c| c.as_str()).collect();
    if json {
        return Ok(serde_json::json!({
            "otpauth_uri": uri,
            "secret": e.secret.to_base32().as_str(),
            "recovery_codes": codes,
        }));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nTwo-factor login: scan this QR code with an authenticator app"
    )?;
    writeln!(out, "(or type the secret into it by hand):\n")?;
    out.write_all(totp::qr_for_terminal(&uri)?.as_bytes())?;
    writeln!(out, "\n{uri}")?;
    writeln!(out, "secret: {}\n", e.secret.to_base32().as_str())?;
    writeln!(
        out,
        "Recovery codes: each works once in place of an authenticator code."
    )?;
    writeln!(out, "Store them safely; they are not shown again.")?;
    for c in codes {
        writeln!(out, "  {c}")?;
    }
    Ok(serde_json::Value::Null)
}

fn cmd_init(data: &DataDir, quiet: bool, offline: Option<&Path>, issuer_days: u64) -> Result<()> {
    let validity = ca::validity_secs(issuer_days)?;
    init::ensure_no_key(data, offline)?;
    if !quiet {
        eprintln!(
            "generating the RSA-4096 root key and the issuing key (this takes a few seconds)..."
        );
    }
    let done = init::init(data, offline, validity, sightline_net::clock::now_unix())?;
    if !quiet {
        let root_dir = offline.unwrap_or(data.root());
        println!(
            "created root CA key: {}",
            root_dir
                .join(sightline_relay::store::paths::CA_KEY_FILE)
                .display()
        );
        if offline.is_some() {
            println!("  keep it offline: the relay does not need it until its issuing key must be renewed");
        }
        println!(
            "created issuing key: {} (certified until {})",
            data.issuer_key().display(),
            sightline_net::cli::utc(done.issuer_not_after)
        );
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
fn read_new_password(
    name: &str,
    from_stdin: bool,
    policy: &PasswordPolicy,
) -> Result<Zeroizing<String>> {
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
    policy.check(name, &first)?;
    let second = prompt("repeat the password: ")?;
    if *first != *second {
        bail!("the passwords do not match; nothing was changed");
    }
    Ok(first)
}

fn cmd_user_add(data: &DataDir, policy: &Policy, args: UserAddArgs) -> Result<()> {
    users::validate_name(&args.name)?;
    // Before the password prompt: a refused label should not cost the typing.
    users::check_labels(args.display_name.as_deref(), args.org.as_deref())?;
    let role = parse_role(&args.role)?;
    let permissions = args
        .permissions
        .as_deref()
        .map(parse_permissions)
        .transpose()?;
    let session_limit_secs = args.session_limit.map(session_limit_secs).transpose()?;
    if args.no_2fa && policy.two_factor_required() {
        return Err(users::UserError::TwoFactorRequired.into());
    }
    if let Some(provider) = &args.oidc {
        check_oidc_provider(data, args.config.as_deref(), provider)?;
    }
    let mut db = Database::open(&data.database())?;
    if users::find(&db, &args.name)?.is_some() {
        return Err(users::UserError::Duplicate(args.name).into());
    }
    let password_policy = policy.password_policy();
    let password = if args.ldap || args.oidc.is_some() {
        None
    } else {
        Some(read_new_password(
            &args.name,
            args.password_stdin,
            &password_policy,
        )?)
    };
    let new = NewUser {
        name: &args.name,
        password: password.as_deref().map(String::as_str),
        display_name: args.display_name.as_deref(),
        organisation: args.org.as_deref(),
        role,
        source: match (args.ldap, &args.oidc) {
            (_, Some(_)) => Source::Oidc,
            (true, None) => Source::Ldap,
            (false, None) => Source::Local,
        },
        oidc: args.oidc.as_deref(),
        permissions,
        session_limit_secs,
        // The provider's second factor counts for an account that signs in there.
        two_factor: !args.no_2fa && args.oidc.is_none(),
        now: sightline_net::clock::now_unix(),
    };
    let enrolment = users::add(&mut db, new, &password_policy)?;
    let detail = match &args.oidc {
        Some(provider) => format!("role {role}, oidc {provider}"),
        None => format!(
            "role {role}, {}{}",
            if args.ldap { "ldap" } else { "local" },
            if args.no_2fa { ", no 2fa" } else { "" }
        ),
    };
    audit_change(&db, "user.add", &args.name, Some(&detail))?;
    if let Some(p) = permissions {
        warn_beyond_policy(policy, p);
    }
    let enrolled = match &enrolment {
        Some(e) => print_enrolment(policy, &args.name, e, args.json)?,
        None => serde_json::Value::Null,
    };
    if args.json {
        let out = serde_json::json!({
            "added": args.name,
            "role": role.as_str(),
            "two_factor": enrolled,
            "oidc": args.oidc,
        });
        println!("{out}");
    } else if let Some(provider) = &args.oidc {
        println!(
            "added user {} ({role}), who signs in with the identity provider {provider}: \
             viewer session --oidc {provider}",
            args.name
        );
    } else {
        println!("added user {} ({role})", args.name);
    }
    Ok(())
}

/// Checks that `provider` is an `[[oidc]]` table of the relay's configuration (`explicit`,
/// else relay.toml in the data directory): a typo would make an account nobody can sign in to.
fn check_oidc_provider(data: &DataDir, explicit: Option<&Path>, provider: &str) -> Result<()> {
    let (config, file) = Config::load_or_default(explicit, &data.config())
        .with_context(|| format!("cannot check --oidc {provider} against the configuration"))?;
    let Some(file) = file else {
        bail!(
            "--oidc {provider}: there is no {} to check it against; give the configuration that \
             `relay serve` uses with --config FILE",
            data.config().display()
        );
    };
    if config.oidc.iter().any(|p| p.name == provider) {
        return Ok(());
    }
    let offered: Vec<&str> = config.oidc.iter().map(|p| p.name.as_str()).collect();
    let has = match offered.is_empty() {
        true => "it has none".to_owned(),
        false => format!("it has: {}", offered.join(", ")),
    };
    bail!(
        "--oidc {provider}: {} has no [[oidc]] table named {provider:?} ({has})",
        file.display()
    )
}

fn cmd_user_show(data: &DataDir, policy: &Policy, name: &str, json: bool) -> Result<()> {
    let db = Database::open(&data.database())?;
    let user = users::get(&db, name)?;
    let left = users::recovery_codes_left(&db, user.id)?;
    let out = listing::show(&user, policy, left);
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", listing::show_text(&out));
    }
    Ok(())
}

fn cmd_user_set(data: &DataDir, policy: &Policy, args: UserSetArgs) -> Result<()> {
    let label = |t: Option<String>| t.map(|t| (!t.is_empty()).then_some(t));
    let session_limit_secs = match args.session_limit.as_deref() {
        None => None,
        Some("policy") => Some(None),
        Some(m) => {
            let minutes: u64 = m
                .parse()
                .with_context(|| format!("--session-limit {m:?}: give minutes or `policy`"))?;
            Some(Some(session_limit_secs(minutes)?))
        }
    };
    let recording = args
        .recording
        .as_deref()
        .map(|m| recording_override(policy, &args.name, m))
        .transpose()?;
    let changes = Changes {
        role: args.role.as_deref().map(parse_role).transpose()?,
        display_name: label(args.display_name),
        organisation: label(args.org),
        permissions: args
            .permissions
            .as_deref()
            .map(parse_permissions)
            .transpose()?,
        session_limit_secs,
        recording,
    };
    if changes == Changes::default() && args.oidc.is_none() {
        bail!("nothing to change: give --role, --display-name, --org, --permissions, --session-limit, --recording or --oidc");
    }
    if let Some(provider) = &args.oidc {
        check_oidc_provider(data, args.config.as_deref(), provider)?;
    }
    let mut db = Database::open(&data.database())?;
    // The account must exist before the link changes anything.
    users::get(&db, &args.name)?;
    if changes != Changes::default() {
        users::update(
            &mut db,
            &args.name,
            &changes,
            sightline_net::clock::now_unix(),
        )?;
        audit_change(&db, "user.set", &args.name, Some(&format!("{changes:?}")))?;
    }
    if let Some(provider) = &args.oidc {
        let now = sightline_net::clock::now_unix();
        let before = users::link_oidc(&mut db, &args.name, provider, now)?;
        let was = match (&before.source, &before.oidc) {
            (Source::Oidc, Some(link)) => format!("was oidc {}", link.provider),
            (source, _) => format!("was {}", source.as_str()),
        };
        let removed = match before.source {
            Source::Oidc => "user at the provider forgotten",
            Source::Local | Source::Ldap => "password, authenticator and recovery codes removed",
        };
        let detail = format!("oidc {provider} ({was}; {removed})");
        audit_change(&db, "user.set", &before.name, Some(&detail))?;
        println!(
            "user {} signs in with the identity provider {provider} ({removed})",
            before.name
        );
    }
    if let Some(p) = changes.permissions {
        warn_beyond_policy(policy, p);
    }
    if changes != Changes::default() {
        println!("updated user {}", args.name);
    }
    Ok(())
}

/// `--recording MODE` as an account's own mode (`off`: none, the policy's applies). A mode
/// that records is refused while the policy names no one to encrypt recordings to.
fn recording_override(policy: &Policy, name: &str, mode: &str) -> Result<Option<RecordingMode>> {
    let mode = recording::parse_mode(mode)
        .with_context(|| format!("--recording {mode:?}: use off, optional or required"))?;
    if mode == RecordingMode::Off {
        return Ok(None);
    }
    if !policy.recording.has_recipients() {
        bail!(
            "cannot record {name}'s sessions: the policy names no recording recipients; add the \
             auditors' age keys to `recipients` in the [recording] section of policy.toml first"
        );
    }
    if mode <= policy.recording.mode {
        eprintln!(
            "note: the policy's recording mode is already {}; {name} gets that while it is",
            policy.recording.mode.name()
        );
    }
    Ok(Some(mode))
}

fn cmd_user_disable(data: &DataDir, name: &str, disable: bool) -> Result<()> {
    let mut db = Database::open(&data.database())?;
    users::set_disabled(&db, name, disable, sightline_net::clock::now_unix())?;
    let action = if disable { "disabled" } else { "enabled" };
    audit_change(
        &db,
        &format!("user.{}", &action[..action.len() - 1]),
        name,
        None,
    )?;
    println!("{action} user {name}");
    if disable {
        cli_ca::revoke_account(&mut db, name, "account disabled")?;
    }
    Ok(())
}

fn cmd_user_passwd(data: &DataDir, policy: &Policy, name: &str, from_stdin: bool) -> Result<()> {
    let mut db = Database::open(&data.database())?;
    let user = users::get(&db, name)?;
    users::refuse_oidc(&user)?;
    if user.source != Source::Local {
        return Err(users::UserError::DirectoryAccount(user.name).into());
    }
    let password_policy = policy.password_policy();
    let password = read_new_password(&user.name, from_stdin, &password_policy)?;
    users::change_password(
        &mut db,
        name,
        &password,
        &password_policy,
        sightline_net::clock::now_unix(),
    )?;
    audit_change(&db, "user.passwd", &user.name, None)?;
    println!("changed the password of {}", user.name);
    Ok(())
}

fn cmd_user_reset_2fa(data: &DataDir, policy: &Policy, name: &str, json: bool) -> Result<()> {
    let mut db = Database::open(&data.database())?;
    let user = users::get(&db, name)?;
    let enrolment = users::reset_two_factor(&mut db, name, sightline_net::clock::now_unix())?;
    audit_change(&db, "user.reset-2fa", &user.name, None)?;
    let enrolled = print_enrolment(policy, &user.name, &enrolment, json)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"user": user.name, "two_factor": enrolled})
        );
    } else {
        println!(
            "\nnew authenticator enrolled for {}; the old one no longer works",
            user.name
        );
    }
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

/// Accounts whose own recording mode records while the policy names no one to record for:
/// they get no certificate (fail closed), so the administrator hears of it at start.
fn unrecordable_accounts(db: &Database, policy: &Policy) -> Result<Vec<String>> {
    if policy.recording.has_recipients() {
        return Ok(Vec::new());
    }
    Ok(users::list(db)?
        .into_iter()
        .filter(|u| u.recording.is_some_and(|m| m != RecordingMode::Off))
        .map(|u| u.name)
        .collect())
}

fn cmd_serve(data: &DataDir, policy: (Policy, Option<PathBuf>), args: ServeArgs) -> Result<()> {
    let (policy, policy_file) = policy;
    init_logging(args.log_json)?;
    let (mut config, config_file) =
        Config::load_or_default(args.config.as_deref(), &data.config())?;
    if !args.listen.is_empty() {
        config.listen_only(args.listen);
    }
    let listener_specs = config
        .listeners()
        .context("invalid listener configuration")?;
    let open_file_limit = fd_limit::fit(&mut config.max_connections);
    let renewal = issuing::Renewal {
        validity_secs: config.issuer_validity_days.saturating_mul(86_400),
        renew_before_secs: config.issuer_renew_days.saturating_mul(86_400),
    };
    // The root key, when it is here, is checked like every key file (and must be the root
    // the issuer certificate names).
    ca::root_fingerprint(data)?;
    let (issuing, created) = ca::load_or_create_issuing(
        data,
        sightline_net::clock::now_unix(),
        renewal.validity_secs,
    )?;
    let mut db = Database::open(&data.database())?;
    let unrecordable = unrecordable_accounts(&db, &policy)?;
    let (audit_key, audit_key_created) = audit::key::load_or_create(data)?;
    let audit_public = audit::key::public_hex(&audit_key);
    db.sign_audit_checkpoints(audit::Checkpointer {
        key: audit_key,
        every: config.audit.checkpoint_every,
    });
    // Checked before start: the settings, the TLS files and the cursor.
    let exporter = match &config.syslog {
        Some(settings) => Some(syslog::Exporter::new(
            settings,
            Box::new(syslog::AuditTable::new(Database::open(&data.database())?)),
            syslog::Cursor::new(data.syslog_cursor()),
        )?),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
        let fingerprint = issuing.authority().root().fingerprint();
        let issuer = issuing.authority().issuer().fingerprint();
        let issuer_not_after = issuing.not_after();
        let relay = Relay::with_issuing(config, policy, issuing, db).await?;
        if !unrecordable.is_empty() {
            tracing::warn!(accounts = ?unrecordable, "these accounts must be recorded (relay user set --recording) but the policy names no recording recipients: they cannot log in until it does, or until their setting is off");
        }
        if audit_key_created {
            tracing::info!(audit_key = %audit_public, "created the audit signing key (data directory from before the audit chain)");
        }
        if created {
            tracing::info!(%issuer, "created the first issuing key (data directory from before issuing keys); the root fingerprint is unchanged");
        }
        tokio::spawn(issuing::watch(relay.clone(), data.clone(), renewal));
        let syslog = exporter.as_ref().map(|e| e.target().to_string());
        if let Some(exporter) = exporter {
            tokio::spawn(exporter.run(relay.audit_written.clone()));
        }
        let listeners = server::open(&listener_specs).await?;
        let mut out = std::io::stdout().lock();
        for l in &listeners {
            writeln!(out, "listening on {}", l.local_addr()?)?;
        }
        out.flush()?;
        drop(out);
        tracing::info!(
            %fingerprint,
            %issuer,
            issuer_not_after,
            root_key_here = ca::root_here(data),
            config = %config_file.as_ref().map_or("(defaults)".into(), |p| p.display().to_string()),
            policy = %policy_file.as_ref().map_or("(defaults)".into(), |p| p.display().to_string()),
            permissions = ?relay.policy.allowed().names(),
            two_factor = ?relay.policy.two_factor.mode,
            ldap = relay.directory.is_some(),
            syslog = %syslog.as_deref().unwrap_or("(off)"),
            max_connections = relay.config.max_connections,
            open_file_limit = %fd_limit::describe(open_file_limit),
            data_dir = %data.root().display(),
            "relay started"
        );
        server::serve(relay.clone(), listeners, async move {
            let signal = shutdown.wait().await;
            tracing::info!(signal, "stopping");
        })
        .await;
        let now = sightline_net::clock::now_unix();
        let checkpoint = relay
            .with_db(move |db| audit::checkpoint_now(db, now))
            .await
            .context("cannot sign the audit checkpoint at shutdown")?;
        if let Some(id) = checkpoint {
            tracing::info!(entry = id, "signed the audit checkpoint");
        }
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

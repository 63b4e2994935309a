//! Part of the `relay` binary: the commands of the certificate authority (`relay ca ...`),
//! of issued certificates (`relay cert ...`) and the revocation list (`relay crl`). The work is
//! done by `sightline_relay::authority`.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use sightline_net::cli::utc;
use sightline_net::clock;
use sightline_net::keystore;
use sightline_relay::authority::ca::{self, IssuerRequest};
use sightline_relay::authority::certs::{self, Revocation};
use sightline_relay::authority::revocation::Snapshot;
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CA_EXAMPLES: &str = "\
The root key (ca-key.pem) is the one whose fingerprint viewers and agents pin; it only certifies
issuing keys. The issuing key (issuer-key.pem, with issuer-cert.bin) signs operator
certificates, the relay's channel key and revocation lists, and is replaced without changing
the fingerprint clients pin.

Root key in the data directory (the default `relay init`): `relay serve` renews the issuing key
by itself before it ends; `relay ca rotate` replaces it at once.

Root key offline (`relay init --offline-ca DIR`):
  on the relay:           relay ca request --out request.bin
  where the root key is:  relay ca issue --root /media/usb/sightline-ca --request request.bin --out issuer-cert.bin
  on the relay:           relay ca install issuer-cert.bin
A running relay picks up the new issuing key within seconds.

Examples:
  relay ca status
  relay ca rotate
  relay ca rotate --root /media/usb/sightline-ca --days 60";

const CA_STATUS_EXAMPLES: &str = "\
Examples:
  relay ca status
  relay ca status --json";

const CA_ROTATE_EXAMPLES: &str = "\
Certifies a new issuing key with the root key (from the data directory, or from --root DIR)
and installs it; certificates the old key signed stay valid until they end.

Examples:
  relay ca rotate
  relay ca rotate --days 30
  relay ca rotate --root /media/usb/sightline-ca";

const CA_REQUEST_EXAMPLES: &str = "\
Makes the next issuing key in the data directory (issuer-key.next.pem, or reuses the one
waiting) and writes the request to certify it. Carry the request to the root key.

Examples:
  relay ca request --out /media/usb/request.bin";

const CA_ISSUE_EXAMPLES: &str = "\
Run where the root key is (it needs no relay data directory). Check that the fingerprint
printed is the one `relay ca request` printed on the relay.

Examples:
  relay ca issue --root /media/usb/sightline-ca --request request.bin --out issuer-cert.bin
  relay ca issue --root /media/usb/sightline-ca --request request.bin --out issuer-cert.bin --days 180";

const CA_INSTALL_EXAMPLES: &str = "\
Examples:
  relay ca install /media/usb/issuer-cert.bin";

pub const CERT_EXAMPLES: &str = "\
Every operator certificate the relay issues is recorded. Revoking one ends the operator's
running relayed sessions within seconds and puts it on the revocation list (relay crl).
`relay user disable` and `relay user remove` revoke all of the account's certificates.

Examples:
  relay cert list
  relay cert list --user alice --all
  relay cert revoke 4127730563119821901";

const CERT_LIST_EXAMPLES: &str = "\
Examples:
  relay cert list
  relay cert list --user alice --all --json";

const CERT_REVOKE_EXAMPLES: &str = "\
Examples:
  relay cert revoke 4127730563119821901
  relay cert revoke 4127730563119821901 --reason 'laptop stolen'";

pub const CRL_EXAMPLES: &str = "\
Writes the current revocation list, signed by the issuing key and carrying its certificate, so
that a LAN-only kiosk can check it against the root fingerprint it pins. Copy it to kiosks
(`agent --lan-only --revocation-list FILE`); viewers also fetch it at each relay login and
pass it on to kiosks holding an older one.

Examples:
  relay crl --out revocations.bin";

/// `relay ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Show the root fingerprint, the issuing key and how long its certificate runs.
    #[command(after_help = CA_STATUS_EXAMPLES)]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Certify a new issuing key with the root key and install it.
    #[command(after_help = CA_ROTATE_EXAMPLES)]
    Rotate {
        /// Directory holding the root key (ca-key.pem) [default: the data directory]
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Validity of the new issuer certificate, days (1 to 400).
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        days: u64,
    },
    /// Root key offline, step 1 (on the relay): make the next issuing key and a request.
    #[command(after_help = CA_REQUEST_EXAMPLES)]
    Request {
        /// Where to write the request.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Root key offline, step 2 (where the root key is): certify a requested issuing key.
    #[command(after_help = CA_ISSUE_EXAMPLES)]
    Issue {
        /// Directory holding the root key (ca-key.pem).
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// The request from `relay ca request`.
        #[arg(long, value_name = "FILE")]
        request: PathBuf,
        /// Where to write the certificate.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Validity of the issuer certificate, days (1 to 400).
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        days: u64,
    },
    /// Root key offline, step 3 (on the relay): install the certificate for the waiting key.
    #[command(after_help = CA_INSTALL_EXAMPLES)]
    Install {
        /// The certificate from `relay ca issue`.
        file: PathBuf,
    },
}

/// `relay cert ...`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// List issued certificates (valid ones unless --all).
    #[command(after_help = CERT_LIST_EXAMPLES)]
    List {
        /// Only this account's.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Include expired certificates.
        #[arg(long)]
        all: bool,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a certificate: its relayed sessions end, kiosks refuse it once they have the list.
    #[command(after_help = CERT_REVOKE_EXAMPLES)]
    Revoke {
        /// The certificate's serial number (see `relay cert list`).
        serial: u64,
        /// Why (recorded in the audit log).
        #[arg(
            long,
            value_name = "TEXT",
            default_value = "revoked by the administrator"
        )]
        reason: String,
    },
}

fn audit(db: &Database, action: &str, subject: &str, detail: Option<&str>) -> Result<()> {
    sightline_relay::store::audit::record(
        db,
        clock::now_unix(),
        "cli",
        action,
        Some(subject),
        detail,
    )?;
    Ok(())
}

pub fn run_ca(data: &DataDir, command: CaCommand) -> Result<()> {
    let now = clock::now_unix();
    match command {
        CaCommand::Status { json } => {
            let s = ca::status(data, now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            writeln!(out, "root key (pinned by clients): {}", s.root)?;
            let here = if s.root_on_this_machine {
                "in the data directory (the relay renews its issuing key by itself)"
            } else {
                "offline (renew with relay ca request, issue, install)"
            };
            writeln!(out, "root key location:            {here}")?;
            writeln!(out, "issuing key:                  {}", s.issuer)?;
            writeln!(out, "issuer certificate serial:    {}", s.serial)?;
            writeln!(
                out,
                "valid:                        {} to {} ({} days left)",
                utc(s.not_before),
                utc(s.not_after),
                s.days_left
            )?;
            if let Some(p) = s.pending {
                writeln!(out, "waiting for a certificate:    {p}")?;
            }
            Ok(())
        }
        CaCommand::Rotate { root, days } => {
            let validity = ca::validity_secs(days)?;
            let root_dir = root.unwrap_or_else(|| data.root().to_path_buf());
            let root = ca::load_root(&root_dir)?;
            eprintln!("generating the new issuing key (this takes a few seconds)...");
            let issuing = ca::rotate(data, &root, now, validity)?;
            let db = Database::open(&data.database())?;
            let fp = issuing.authority().issuer().fingerprint().to_string();
            audit(&db, "ca.rotate", &fp, Some(&format!("{days} days")))?;
            println!(
                "new issuing key {fp}, valid until {}; the root fingerprint is unchanged:",
                utc(issuing.not_after())
            );
            println!("{}", issuing.authority().root().fingerprint());
            Ok(())
        }
        CaCommand::Request { out } => {
            let req = ca::request(data)?;
            write_file(&out, &req.to_bytes()?)?;
            println!("request written to {}", out.display());
            println!("issuing key to certify (check it where the root key is):");
            println!("{}", req.key_fingerprint());
            Ok(())
        }
        CaCommand::Issue {
            root,
            request,
            out,
            days,
        } => {
            let validity = ca::validity_secs(days)?;
            let req = IssuerRequest::read(&request)?;
            let authority = ca::issue(&root, &req, now, validity)?;
            write_file(&out, &authority.to_bytes()?)?;
            println!(
                "certified issuing key {} until {} with root key {}",
                req.key_fingerprint(),
                utc(authority.issuer_body().not_after),
                authority.root().fingerprint()
            );
            println!(
                "certificate written to {}; install it on the relay with `relay ca install`",
                out.display()
            );
            Ok(())
        }
        CaCommand::Install { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let authority =
                sightline_core::authority::Authority::from_bytes(&bytes).with_context(|| {
                    format!(
                        "{} is not a certificate from `relay ca issue`",
                        file.display()
                    )
                })?;
            let issuing = ca::install_certificate(data, authority, now)?;
            let db = Database::open(&data.database())?;
            let fp = issuing.authority().issuer().fingerprint().to_string();
            audit(&db, "ca.install", &fp, None)?;
            println!(
                "installed issuing key {fp}, valid until {}; a running relay uses it within seconds",
                utc(issuing.not_after())
            );
            Ok(())
        }
    }
}

/// Writes a public file (request, certificate, revocation list) atomically, owner-only.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    keystore::replace_secret(path, bytes)?;
    Ok(())
}

pub fn run_cert(data: &DataDir, command: CertCommand) -> Result<()> {
    let now = clock::now_unix();
    match command {
        CertCommand::List { user, all, json } => {
            let db = Database::open(&data.database())?;
            let list = certs::list(&db, user.as_deref(), all, now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<20} {:<20} {:<20} {:<20} STATUS",
                "SERIAL", "ACCOUNT", "ISSUED", "ENDS"
            )?;
            for c in list {
                let status = match (c.revoked_at, c.not_after <= now) {
                    (Some(at), _) => format!("revoked {}", utc(at)),
                    (None, true) => "expired".into(),
                    (None, false) => "valid".into(),
                };
                writeln!(
                    out,
                    "{:<20} {:<20} {:<20} {:<20} {status}",
                    c.serial,
                    c.account,
                    utc(c.not_before),
                    utc(c.not_after)
                )?;
            }
            Ok(())
        }
        CertCommand::Revoke { serial, reason } => {
            let mut db = Database::open(&data.database())?;
            match certs::revoke_serial(&mut db, serial, now, &reason)? {
                Revocation::Revoked { account } => {
                    audit(
                        &db,
                        "cert.revoke",
                        &account,
                        Some(&format!("serial {serial}: {reason}")),
                    )?;
                    println!(
                        "revoked certificate {serial} of {account}; a running relay ends its sessions within seconds"
                    );
                    Ok(())
                }
                Revocation::AlreadyRevoked => {
                    println!("certificate {serial} was already revoked");
                    Ok(())
                }
                Revocation::Unknown => {
                    bail!("no certificate with serial {serial} was issued by this relay")
                }
            }
        }
    }
}

/// Revokes every valid certificate of `name` (account disabled or removed); prints how many.
pub fn revoke_account(db: &mut Database, name: &str, reason: &str) -> Result<()> {
    let serials = certs::revoke_account(db, name, clock::now_unix(), reason)?;
    if !serials.is_empty() {
        let list: Vec<String> = serials.iter().map(u64::to_string).collect();
        audit(
            db,
            "cert.revoke",
            name,
            Some(&format!("{reason}: {}", list.join(", "))),
        )?;
        println!(
            "revoked {} certificate(s) of {name}; a running relay ends their sessions within seconds",
            serials.len()
        );
    }
    Ok(())
}

pub fn run_crl(data: &DataDir, out: &Path) -> Result<()> {
    let db = Database::open(&data.database())?;
    let issuing = ca::load_issuing(data, true)?;
    let snapshot = Snapshot::make(&db, &issuing, clock::now_unix())?;
    write_file(out, &snapshot.list.to_bytes()?)?;
    println!(
        "revocation list {} ({} certificates) signed by issuing key {}, written to {}",
        snapshot.sequence,
        snapshot.list.entries().len(),
        snapshot.issuer,
        out.display()
    );
    Ok(())
}

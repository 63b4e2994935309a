//! `agent audit verify FILE [--key HEX]` and `agent audit key`: checks a kiosk's log line by
//! line ([`verify_file`]) and prints the checkpoint key.
//!
//! Exit status of `verify`: 0 and `ok: N entries, last checkpoint #ID at TIME`; 1 and
//! `bad: entry #ID: what` for the first bad line; 2 when the file or key cannot be read.

pub use super::verify::verify_file;
use super::KEY_FILE;
use sightline_core::audit_chain::checkpoint::{parse_public, public_hex};
use sightline_core::audit_chain::rfc3339;
use sightline_net::audit_key::{self, AuditKeyError};
use sightline_net::{cli, keystore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `agent audit verify`.
pub fn verify(file: &Path, key: Option<String>, data_dir: Option<PathBuf>) -> ExitCode {
    let public = match key {
        Some(text) => {
            match parse_public(&text) {
                Some(k) => Some(k),
                None => {
                    eprintln!("agent: --key {text:?}: give the 64 hex digits printed by `agent audit key`");
                    return ExitCode::from(2);
                }
            }
        }
        // The kiosk's own key when this machine has it; checked anyway without (a log with a
        // checkpoint then fails, naming it).
        None => match cli::data_dir("agent", data_dir).map(|d| d.join(KEY_FILE)) {
            Ok(path) => match audit_key::load(&path) {
                Ok(k) => Some(k.verifying_key()),
                Err(AuditKeyError::Missing(_)) => None,
                Err(e) => {
                    eprintln!("agent: {e}");
                    return ExitCode::from(2);
                }
            },
            Err(_) => None,
        },
    };
    match verify_file(file, public.as_ref()) {
        Ok(Ok(summary)) => {
            let last = match summary.last_checkpoint {
                Some((id, at)) => format!("last checkpoint #{id} at {}", rfc3339(at)),
                None => "no checkpoint yet".to_string(),
            };
            let pruned = match summary.pruned {
                Some((first, at)) => {
                    format!(" (entries before #{first} pruned on {})", rfc3339(at))
                }
                None => String::new(),
            };
            println!("ok: {} entries{pruned}, {last}", summary.entries);
            ExitCode::SUCCESS
        }
        Ok(Err(bad)) => {
            println!("bad: {bad}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("agent: cannot read {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// `agent audit key`: the checkpoint key's public half, made if missing (as the kiosk does
/// at start).
pub fn print_key(data_dir: Option<PathBuf>) -> ExitCode {
    let made = cli::data_dir("agent", data_dir)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            keystore::create_private_dir(&d).map_err(|e| e.to_string())?;
            audit_key::load_or_create(&d.join(KEY_FILE)).map_err(|e| e.to_string())
        });
    match made {
        Ok((key, _)) => {
            println!("{}", public_hex(&key));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent: {e}");
            ExitCode::from(2)
        }
    }
}

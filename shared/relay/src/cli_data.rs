//! `relay data`: what the relay stores about people and sessions, and for how long
//! ([`sightline_relay::store::inventory`]).

use anyhow::Result;
use clap::Subcommand;
use sightline_relay::policy::Policy;
use sightline_relay::store::db::Database;
use sightline_relay::store::inventory;
use sightline_relay::store::paths::DataDir;
use std::io::Write;

pub const DATA_EXAMPLES: &str = "\
Examples:
  relay data inventory
  relay data inventory --json
  relay --policy /etc/sightline/policy.toml data inventory";

const INVENTORY_EXAMPLES: &str = "\
Lists every kind of personal data and metadata the relay stores: the file (and database table),
its fields, why it is kept, how long (the [retention] setting of the policy in force), and how
many rows there are now (for files: 1 if present, 0 if not; for the recordings directory, its
files), and for recordings their bytes and when the oldest started. --json prints an array of
objects with what, file, table, fields, purpose, kept, setting, days, count, bytes and oldest.

Examples:
  relay data inventory
  relay data inventory --json";

/// `relay data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// List every kind of stored data: where, which fields, why, how long, how many.
    #[command(after_help = INVENTORY_EXAMPLES)]
    Inventory {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(data: &DataDir, policy: &Policy, command: &DataCommand) -> Result<()> {
    let DataCommand::Inventory { json } = command;
    let db = Database::open(&data.database())?;
    let items = inventory::inventory(data, &db, &policy.retention)?;
    let mut out = std::io::stdout().lock();
    if *json {
        serde_json::to_writer_pretty(&mut out, &items)?;
        return Ok(writeln!(out)?);
    }
    for i in items {
        let mut place = match (&i.table, i.bytes) {
            (Some(t), _) => format!("{} table {t}, {} rows", i.file, i.count),
            (None, Some(_)) => format!("{}/, {} files", i.file, i.count),
            (None, None) if i.count > 0 => format!("{} (present)", i.file),
            (None, None) => format!("{} (absent)", i.file),
        };
        if let Some(bytes) = i.bytes {
            place.push_str(&format!(", {bytes} bytes"));
        }
        if let Some(oldest) = i.oldest {
            place.push_str(&format!(
                ", oldest started {}",
                sightline_net::cli::utc(oldest)
            ));
        }
        writeln!(
            out,
            "{}\n  where:  {place}\n  fields: {}\n  why:    {}\n  kept:   {}\n",
            i.what, i.fields, i.purpose, i.kept
        )?;
    }
    Ok(())
}

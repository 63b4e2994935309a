//! Part of the `relay` binary: `relay agent-bundle`, the agent preconfigured for this help
//! desk (its name, the relay's routes, the root key's fingerprint), signed by the root key so
//! the agent refuses a changed copy ([`sightline_core::bundle`]).

use anyhow::{bail, Context, Result};
use clap::Args;
use rand_core::OsRng;
use sightline_core::bundle;
use sightline_net::clock;
use sightline_net::route::RouteList;
use sightline_relay::authority::ca;
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const BUNDLE_EXAMPLES: &str = "\
The customer runs the written file and types only the session code: the help desk's name, the
relay's routes (tried in the order given) and the root key's fingerprint are in it, signed by
the root key. An agent whose settings or program were changed refuses to start.

Examples:
  relay agent-bundle --name 'Example IT Help Desk' --relay relay.example.com --out sightline-support
  relay agent-bundle --name 'Example IT' --out support \\
      --relay tcp://relay.example.com:7615,wss://relay.example.com/sightline
  relay agent-bundle --name 'Example IT' --relay relay.example.com --out support \\
      --root /media/usb/sightline-ca --agent /usr/share/sightline/agent";

/// Largest agent executable read (a debug build with the window is over 500 MiB).
const MAX_AGENT_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The help desk's name, shown to the customer before anything else (1 to 80 characters).
    #[arg(long, value_name = "TEXT")]
    name: String,
    /// The routes customers reach the relay by, as the agent's --relay takes them: HOST, or a
    /// comma-separated list of tcp://, tls://, ws://, wss:// URLs in fallback order.
    #[arg(long, value_name = "ROUTES")]
    relay: String,
    /// Where to write the preconfigured agent (mode 0755).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The agent executable to configure [default: `agent` or `sightline-agent` beside this
    /// relay program].
    #[arg(long, value_name = "FILE")]
    agent: Option<PathBuf>,
    /// Directory holding the root key (ca-key.pem) [default: the data directory].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

pub fn run(data: &DataDir, args: BundleArgs) -> Result<()> {
    let routes: RouteList = args
        .relay
        .parse()
        .map_err(|e| anyhow::anyhow!("--relay: {e}"))?;
    let agent_path = match args.agent {
        Some(p) => p,
        None => default_agent()?,
    };
    let agent = read_agent(&agent_path)?;
    let root_dir = args.root.unwrap_or_else(|| data.root().to_path_buf());
    let root = ca::load_root(&root_dir)?;
    let now = clock::now_unix();
    let file = bundle::seal(
        &agent,
        &args.name,
        &routes.to_string(),
        &root,
        now,
        &mut OsRng,
    )?;
    write_executable(&args.out, &file)?;
    let fingerprint = root.public().fingerprint().to_string();
    if let Ok(db) = Database::open(&data.database()) {
        sightline_relay::store::audit::record(
            &db,
            now,
            "cli",
            "agent.bundle",
            Some(&args.name),
            Some(&format!("relay {routes}, root {fingerprint}")),
        )?;
    }
    println!(
        "wrote {} ({} bytes) for {}: relay {routes}, root key {fingerprint}",
        args.out.display(),
        file.len(),
        args.name.trim()
    );
    Ok(())
}

/// The agent beside the running relay program: `agent` (a build from source) or
/// `sightline-agent` (where the packages install both, /usr/bin).
fn default_agent() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program's directory")?;
    let dir = exe.parent().context("this program has no directory")?;
    ["agent", "sightline-agent"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no agent program (agent or sightline-agent) in {}: give the one to configure with --agent FILE",
                dir.display()
            )
        })
}

fn read_agent(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_AGENT_BYTES {
        bail!(
            "{} is not an agent program (not a file, or over 1 GiB)",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !bytes.starts_with(b"\x7fELF") && !bytes.starts_with(b"MZ") {
        bail!("{} is not an executable (ELF or PE)", path.display());
    }
    Ok(bytes)
}

/// Writes through a temporary file beside `path`, then renames, so a half-written agent never
/// sits under the final name.
fn write_executable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        // A half-written agent is not left behind under any name.
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

//! What the viewer's and the agent's command lines share: data and config locations, the
//! client config file, event output (human or JSON lines), logging set-up and the shutdown
//! signal.

use crate::dial::{Dialed, Dialer, Relay};
use crate::proxy::ProxySettings;
use crate::route::RouteList;
use serde::Deserialize;
use sightline_core::identity::Fingerprint;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of the command-line helpers.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No home directory to derive default paths from.
    #[error("cannot determine a data directory for this user; pass --data-dir")]
    NoHome,
    /// The config file could not be read.
    #[error("{path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("{path}: {message}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// Parser's explanation.
        message: String,
    },
    /// A setting is missing or malformed.
    #[error("{0}")]
    Missing(String),
}

fn project_dirs() -> Result<directories::ProjectDirs, CliError> {
    directories::ProjectDirs::from("", "", "sightline").ok_or(CliError::NoHome)
}

/// `--data-dir` if given, else the platform data directory joined with `program`.
pub fn data_dir(program: &str, flag: Option<PathBuf>) -> Result<PathBuf, CliError> {
    match flag {
        Some(p) => Ok(p),
        None => Ok(project_dirs()?.data_dir().join(program)),
    }
}

/// Settings a client reads from its TOML config file; flags override them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Relay address: `HOST[:PORT]` or a comma-separated list of routes (see
    /// [`crate::route`]).
    pub relay: Option<String>,
    /// Pinned relay key fingerprint (hex SHA-256).
    pub relay_key: Option<String>,
    /// HTTP proxy to the relay, `http://[USER:PASS@]HOST:PORT`, or `none`; unset: the
    /// environment's `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`.
    pub proxy: Option<String>,
}

impl ClientConfig {
    /// Reads `--config FILE` if given (it must exist), else `<config dir>/<program>.toml` if it
    /// exists, else defaults.
    pub fn load(program: &str, flag: Option<&Path>) -> Result<Self, CliError> {
        let (path, required) = match flag {
            Some(p) => (p.to_path_buf(), true),
            None => match project_dirs() {
                Ok(d) => (d.config_dir().join(format!("{program}.toml")), false),
                Err(_) => return Ok(Self::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default())
            }
            Err(source) => return Err(CliError::ReadConfig { path, source }),
        };
        Self::parse(&text, &path)
    }

    /// Parses the text of a config file read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, CliError> {
        toml::from_str(text).map_err(|e| CliError::BadConfig {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Resolves the relay's routes and pinned key from flags, then the file.
    pub fn relay(
        &self,
        relay_flag: Option<String>,
        key_flag: Option<String>,
    ) -> Result<(RouteList, Fingerprint), CliError> {
        let addr = relay_flag.or_else(|| self.relay.clone()).ok_or_else(|| {
            CliError::Missing(
                "no relay address: pass --relay HOST[:PORT] (or a list of tcp://, tls://, ws://, wss:// URLs) or set `relay` in the config file".into(),
            )
        })?;
        let routes = addr
            .parse::<RouteList>()
            .map_err(|e| CliError::Missing(format!("relay address: {e}")))?;
        let key = key_flag.or_else(|| self.relay_key.clone()).ok_or_else(|| {
            CliError::Missing("no pinned relay key: pass --relay-key HEX (from `relay fingerprint`) or set `relay_key` in the config file".into())
        })?;
        let fp = key
            .parse::<Fingerprint>()
            .map_err(|e| CliError::Missing(format!("--relay-key: {e}")))?;
        Ok((routes, fp))
    }

    /// The proxy settings from `--proxy`, then the file, then the environment.
    pub fn proxy(&self, flag: Option<String>) -> Result<ProxySettings, CliError> {
        let setting = flag.or_else(|| self.proxy.clone());
        ProxySettings::from_flag(setting.as_deref())
            .map_err(|e| CliError::Missing(format!("--proxy: {e}")))
    }

    /// The relay (its routes, dialled through the proxy settings) and its pinned key.
    pub fn relay_target(
        &self,
        relay_flag: Option<String>,
        key_flag: Option<String>,
        proxy_flag: Option<String>,
    ) -> Result<(Relay, Fingerprint), CliError> {
        let (routes, pin) = self.relay(relay_flag, key_flag)?;
        let dialer = Dialer::new(self.proxy(proxy_flag)?);
        Ok((Relay::new(routes, dialer), pin))
    }
}

/// Tells the user once which route reached the relay: `Connected to the relay over ROUTE
/// (through proxy PROXY)` on stderr, or in JSON mode
/// `{"event":"route","route":ROUTE,"proxy":PROXY or null}` on stdout.
pub fn announce_route(out: Output, dialed: &Dialed) {
    if out.json {
        out.event(route_json(dialed), String::new);
    } else {
        eprintln!("{}", route_line(dialed));
    }
}

/// The human line of [`announce_route`].
pub fn route_line(dialed: &Dialed) -> String {
    match &dialed.proxy {
        Some(p) => format!(
            "Connected to the relay over {} (through proxy {p})",
            dialed.route
        ),
        None => format!("Connected to the relay over {}", dialed.route),
    }
}

/// The JSON event of [`announce_route`].
pub fn route_json(dialed: &Dialed) -> serde_json::Value {
    serde_json::json!({
        "event": "route",
        "route": dialed.route.to_string(),
        "proxy": dialed.proxy.as_ref().map(|p| p.to_string()),
    })
}

/// Where events go: human lines, or one JSON object per line.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON lines on stdout.
    pub json: bool,
    /// In JSON mode, each event also carries the human line as `text` (for a front end that
    /// shows the customer exactly what the terminal would: the agent's window).
    pub text: bool,
}

impl Output {
    /// Human lines (`json` false) or JSON lines without the human text.
    pub fn new(json: bool) -> Self {
        Self { json, text: false }
    }

    /// Emits an event: `json` in JSON mode, `human` otherwise.
    pub fn event(&self, json: serde_json::Value, human: impl FnOnce() -> String) {
        let line = match (self.json, json) {
            (true, serde_json::Value::Object(mut map)) if self.text => {
                map.insert("text".into(), human().into());
                serde_json::Value::Object(map).to_string()
            }
            (true, json) => json.to_string(),
            (false, _) => human(),
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout must not crash the session; there is nobody left to tell.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Reports a fatal error: a JSON event in JSON mode, and always one line on stderr.
    pub fn fatal(&self, program: &str, message: &str) {
        if self.json {
            self.event(
                serde_json::json!({"event": "error", "message": message}),
                String::new,
            );
        }
        eprintln!("{program}: error: {message}");
    }
}

/// The small runtime the client programs run their network side on (two workers: the
/// heavy work happens on dedicated capture, encoder and decoder threads).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Exit statuses of the client programs.
pub mod exit {
    /// The session ended normally (an explicit close from either side).
    pub const ENDED: u8 = 0;
    /// An error: login, relay, handshake, a file that could not be written.
    pub const FAILED: u8 = 1;
    /// The command line could not be understood (clap's own status).
    pub const USAGE: u8 = 2;
    /// The session ended abnormally: the connection was lost without a close message.
    pub const ABNORMAL: u8 = 3;
    /// The other side refused the session: the customer declined or did not answer, or the
    /// agent did not accept this operator.
    pub const REFUSED: u8 = 4;
}

/// Runs a client program's body on a small runtime and turns its outcome into the exit
/// status (see [`exit`]); every error is [`exit::FAILED`]. Failures also print one line on
/// stderr (and a JSON `error` event in JSON mode).
pub fn run_main<E: std::fmt::Display>(
    program: &str,
    out: Output,
    body: impl std::future::Future<Output = Result<crate::session::SessionEnd, E>>,
) -> std::process::ExitCode {
    run_main_with(program, out, body, |_| exit::FAILED)
}

/// Like [`run_main`], with `error_status` choosing the exit status of an error.
pub fn run_main_with<E: std::fmt::Display>(
    program: &str,
    out: Output,
    body: impl std::future::Future<Output = Result<crate::session::SessionEnd, E>>,
    error_status: impl FnOnce(&E) -> u8,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            out.fatal(program, &format!("cannot start runtime: {e}"));
            return ExitCode::from(exit::FAILED);
        }
    };
    match rt.block_on(body) {
        Ok(end) if end.is_refusal() => ExitCode::from(exit::REFUSED),
        Ok(end) if end.is_normal() => ExitCode::from(exit::ENDED),
        Ok(end) => {
            eprintln!(
                "{program}: error: session ended abnormally: {}",
                end.reason()
            );
            ExitCode::from(exit::ABNORMAL)
        }
        Err(e) => {
            out.fatal(program, &format!("{e:#}"));
            ExitCode::from(error_status(&e))
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default level (warn).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves when the user asks the program to stop (Ctrl-C, or SIGTERM on Unix). The handlers
/// are installed when this is called, not when the future is first polled, so call it before
/// telling anyone the program is ready: a SIGTERM that arrives in between is then not fatal.
/// Must be called inside the async runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Formats Unix seconds as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn utc(ts: u64) -> String {
    let days = ts / 86_400;
    let secs = ts % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all dates after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00:00 UTC");
        assert_eq!(utc(951_825_600), "2000-02-29 12:00:00 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn relay_settings_come_from_flags_then_file() {
        let text = format!(
            "relay = \"relay.example\"\nrelay_key = \"{}\"\nproxy = \"none\"\n",
            "ab".repeat(32)
        );
        let cfg: ClientConfig = toml::from_str(&text).unwrap();
        let first = |flag: Option<&str>| {
            let (routes, _) = cfg.relay(flag.map(String::from), None).unwrap();
            routes.routes()[0].to_string()
        };
        // A bare host: plain TCP on 7615 first (then wss and ws).
        assert_eq!(first(None), "tcp://relay.example:7615");
        let (routes, _) = cfg.relay(None, None).unwrap();
        assert_eq!(routes.routes().len(), 3);
        assert_eq!(routes.to_string(), "relay.example");
        assert_eq!(first(Some("127.0.0.1:9")), "tcp://127.0.0.1:9");
        // A bare IPv6 address has no port: 7615, in the brackets a connect needs.
        assert_eq!(first(Some("::1")), "tcp://[::1]:7615");
        assert_eq!(first(Some("[::1]:9")), "tcp://[::1]:9");
        // Colons without brackets are an IPv6 address, never an address and a port.
        assert_eq!(first(Some("::1:9")), "tcp://[::1:9]:7615");
        assert_eq!(
            first(Some("wss://r.example,r.example:1")),
            "wss://r.example:443/sightline"
        );
        let err = cfg.relay(Some("::1:99999".into()), None).unwrap_err();
        assert!(err.to_string().contains("[ADDRESS]:PORT"), "{err}");
        let err = cfg.relay(Some("ftp://r".into()), None).unwrap_err();
        assert!(err.to_string().contains("unknown scheme"), "{err}");
        assert!(cfg.relay(None, Some("nothex".into())).is_err());
        assert!(toml::from_str::<ClientConfig>("relai = \"x\"").is_err());
        assert!(matches!(cfg.proxy(None), Ok(ProxySettings::Never)));
        assert!(matches!(
            cfg.proxy(Some("http://p.corp:3128".into())),
            Ok(ProxySettings::Fixed(_))
        ));
        let err = cfg.proxy(Some("https://p.corp".into())).unwrap_err();
        assert!(err.to_string().starts_with("--proxy: "), "{err}");
    }

    #[test]
    fn the_route_is_told_without_credentials() {
        let list: RouteList = "wss://relay.example.com".parse().unwrap();
        let mut dialed = Dialed {
            route: list.routes()[0].clone(),
            proxy: None,
        };
        assert_eq!(
            route_line(&dialed),
            "Connected to the relay over wss://relay.example.com:443/sightline"
        );
        assert_eq!(route_json(&dialed)["proxy"], serde_json::Value::Null);
        dialed.proxy = Some("http://u:secret@proxy.corp:3128".parse().unwrap());
        assert_eq!(
            route_line(&dialed),
            "Connected to the relay over wss://relay.example.com:443/sightline (through proxy http://proxy.corp:3128)"
        );
        let v = route_json(&dialed);
        assert_eq!(v["event"], "route");
        assert_eq!(v["route"], "wss://relay.example.com:443/sightline");
        assert_eq!(v["proxy"], "http://proxy.corp:3128");
        assert!(!v.to_string().contains("secret"));
    }
}

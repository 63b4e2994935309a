//! The exporter task: reads entries after the cursor, sends them, advances the cursor, and
//! waits for more (woken by the relay after it records an entry, and every
//! [`POLL_INTERVAL`] for entries other processes wrote).
//!
//! A broken or refused connection is retried with [`Backoff`]; nothing is skipped, because the
//! cursor moves only after a batch is written and flushed and the connection stayed open a
//! moment longer ([`InFlight`]). Connection state changes are logged once each, not on every
//! retry.

use super::backoff::Backoff;
use super::cursor::{Cursor, CursorError};
use super::format::{Header, Message};
use super::inflight::InFlight;
use super::link::Link;
use super::settings::{SyslogConfig, SyslogConfigError, Target, Transport};
use super::source::{EntrySource, ExportEntry, SourceError};
use super::tls::{self, TlsSetupError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How often the audit log is read when nothing wakes the exporter.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Most entries read and sent at once.
pub const BATCH: usize = 256;

/// Sleeps until woken, the poll interval or `deadline` (entries to confirm) passes, or the
/// collector closes the connection (returns the reason).
async fn wait(link: &mut Option<Link>, wake: &Notify, deadline: Option<Instant>) -> Option<String> {
    let poll = Instant::now() + POLL_INTERVAL;
    let until = deadline.map_or(poll, |d| d.min(poll));
    let closed = async {
        match link.as_mut() {
            Some(l) => l.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = wake.notified() => None,
        _ = tokio::time::sleep_until(until.into()) => None,
        reason = closed => Some(reason),
    }
}

/// Errors preparing the exporter (before the relay starts).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A `[syslog]` value makes no sense.
    #[error("syslog: {0}")]
    Config(#[from] SyslogConfigError),
    /// The CA, certificate or key file is not usable.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The cursor file is not usable.
    #[error("syslog cursor: {0}")]
    Cursor(#[from] CursorError),
}

/// The connection as the exporter last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected, nothing waiting (at start, or after the collector closed an idle
    /// connection).
    Idle,
    /// Connected.
    Connected,
    /// Connecting or sending failed; retrying. The reason, without secrets.
    Down(String),
}

/// What the exporter has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The connection.
    pub link: LinkState,
    /// The id of the last entry delivered (written, flushed, and the connection still open
    /// [`super::inflight::GRACE`] later): the cursor.
    pub delivered: u64,
}

type Source = Arc<Mutex<Box<dyn EntrySource>>>;

/// Exports entries to one collector; see the [module documentation](self).
pub struct Exporter {
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    header: Header,
    source: Source,
    cursor: Cursor,
    status: watch::Sender<Status>,
    cursor_ok: bool,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("target", &self.target)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Checks `config`, reads its TLS files and the cursor; contacts nothing.
    pub fn new(
        config: &SyslogConfig,
        source: Box<dyn EntrySource>,
        cursor: Cursor,
    ) -> Result<Self, SetupError> {
        let target = config.validate()?;
        let tls = match target.transport {
            Transport::Tls => Some(tls::client_config(config)?),
            Transport::Udp | Transport::Tcp => None,
        };
        let delivered = cursor.load()?;
        let header = Header {
            facility: config.facility,
            hostname: config.hostname_or_machine(),
            app_name: config.app_name.clone(),
            procid: std::process::id(),
        };
        let (status, _) = watch::channel(Status {
            link: LinkState::Idle,
            delivered,
        });
        Ok(Self {
            target,
            tls,
            header,
            source: Arc::new(Mutex::new(source)),
            cursor,
            status,
            cursor_ok: true,
        })
    }

    /// The collector.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Follows the exporter's state (for tests and health checks).
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    fn delivered(&self) -> u64 {
        self.status.borrow().delivered
    }

    /// Runs until the task is dropped. `wake` is poked after an entry is recorded.
    pub async fn run(mut self, wake: Arc<Notify>) {
        self.check_cursor().await;
        let mut link: Option<Link> = None;
        let mut inflight = InFlight::default();
        let mut backoff = Backoff::default();
        // Connect once at start even with nothing to send, so a bad collector shows at once.
        let mut eager = true;
        loop {
            if link.is_some() {
                if let Some(id) = inflight.confirm(Instant::now()) {
                    backoff.reset();
                    self.advance(id);
                    self.set_link(LinkState::Connected);
                }
            }
            let after = inflight.last().unwrap_or_else(|| self.delivered());
            let batch = match self.fetch(after).await {
                Ok(b) => b,
                Err(e) => {
                    self.set_link(LinkState::Down(format!("cannot read the audit log: {e}")));
                    tokio::time::sleep(POLL_INTERVAL).await;
                    continue;
                }
            };
            if batch.is_empty() && !eager {
                if let Some(reason) = wait(&mut link, &wake, inflight.deadline()).await {
                    link = None;
                    if inflight.lost() {
                        // Closed before what was written counted: a refusal or a crash.
                        self.set_link(LinkState::Down(reason));
                        tokio::time::sleep(backoff.failed()).await;
                    } else {
                        self.set_link(LinkState::Idle);
                    }
                }
                continue;
            }
            if link.is_none() {
                match Link::connect(&self.target, self.tls.as_ref()).await {
                    Ok(l) => {
                        eager = false;
                        link = Some(l);
                        // After a failure, "connected" is logged once entries are confirmed.
                        let down = matches!(self.status.borrow().link, LinkState::Down(_));
                        if batch.is_empty() || !down {
                            self.set_link(LinkState::Connected);
                        }
                    }
                    Err(e) => {
                        self.set_link(LinkState::Down(e.to_string()));
                        tokio::time::sleep(backoff.failed()).await;
                        continue;
                    }
                }
            }
            let (Some(connected), Some(last)) = (link.as_mut(), batch.last().map(|e| e.id)) else {
                continue;
            };
            let messages: Vec<Message> = batch
                .iter()
                .map(|e| Message::new(&self.header, e))
                .collect();
            match connected.send(&messages).await {
                Ok(()) => inflight.written(last, Instant::now()),
                Err(e) => {
                    link = None;
                    inflight.lost();
                    self.set_link(LinkState::Down(e.to_string()));
                    tokio::time::sleep(backoff.failed()).await;
                }
            }
        }
    }

    async fn fetch(&self, after: u64) -> Result<Vec<ExportEntry>, SourceError> {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || {
            let mut source = source.lock().unwrap_or_else(|p| p.into_inner());
            source.after(after, BATCH)
        })
        .await
        .unwrap_or_else(|_| Ok(Vec::new()))
    }

    /// Warns when the cursor is past the newest entry (a database restored from a backup):
    /// entries up to the cursor would not be exported.
    async fn check_cursor(&self) {
        let source = self.source.clone();
        let newest = tokio::task::spawn_blocking(move || {
            source.lock().unwrap_or_else(|p| p.into_inner()).newest()
        })
        .await;
        let delivered = self.delivered();
        if let Ok(Ok(newest)) = newest {
            if delivered > newest {
                tracing::warn!(
                    cursor = delivered,
                    newest,
                    file = %self.cursor.path().display(),
                    "syslog: the cursor is past the newest audit entry (database restored?); \
                     entries up to the cursor are not exported; delete the file to resend all"
                );
            }
        }
    }

    /// Records delivery up to `id`, in memory and in the cursor file.
    fn advance(&mut self, id: u64) {
        match self.cursor.store(id) {
            Ok(()) => self.cursor_ok = true,
            Err(e) => {
                // Delivery goes on; after a restart the entries since the last stored cursor
                // are sent again (at least once).
                if self.cursor_ok {
                    tracing::error!(error = %e, "syslog: cannot store the cursor");
                }
                self.cursor_ok = false;
            }
        }
        self.status.send_modify(|s| s.delivered = id);
    }

    /// Logs a change of connection state (not a repeat of the same one).
    fn set_link(&mut self, link: LinkState) {
        if self.status.borrow().link == link {
            return;
        }
        let collector = self.target.to_string();
        let after = self.delivered();
        match &link {
            LinkState::Connected => {
                tracing::info!(%collector, after, "syslog: connected; sending audit entries after the cursor")
            }
            LinkState::Down(reason) => tracing::warn!(
                %collector,
                %reason,
                after,
                "syslog: cannot deliver; retrying (1 s doubling to 30 s), entries wait in the audit log"
            ),
            LinkState::Idle => {
                tracing::info!(%collector, "syslog: the collector closed the connection")
            }
        }
        self.status.send_modify(|s| s.link = link);
    }
}

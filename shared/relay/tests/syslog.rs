//! The audit log exported to a real rsyslog (Debian's `rsyslog` and `rsyslog-gnutls`), started
//! by the test in the foreground on a free loopback port with its own work directory and a
//! certificate made with the openssl command: TLS delivery in order and exactly once, a
//! collector outage (rsyslog killed, entries written, rsyslog restarted on the same port)
//! caught up with nothing lost, a relay restart resumed from the cursor, UDP and plain TCP,
//! and a collector whose certificate the configured CA did not sign refused before anything is
//! sent.
//!
//! Bounded: every wait gives up after [`WAIT`] (generous: a reconnect waits at most 30 s) and
//! fails with rsyslog's own messages; no timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_relay::store::audit;
use sightline_relay::store::db::Database;
use sightline_relay::syslog::{AuditTable, Cursor, Exporter, LinkState, Status, SyslogConfig};
use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Longest wait for anything: rsyslog starting, a reconnect (backoff at most 30 s), delivery.
const WAIT: Duration = Duration::from_secs(90);
const INSTALL: &str =
    "install rsyslog and rsyslog-gnutls (apt-get install rsyslog rsyslog-gnutls, or ./dev test)";

fn rsyslogd() -> PathBuf {
    let found = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(path) = found else {
        panic!("rsyslogd not found: {INSTALL}");
    };
    let gtls = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("rsyslog/lmnsd_gtls.so"))
        .chain([PathBuf::from("/usr/lib/rsyslog/lmnsd_gtls.so")])
        .any(|p| p.exists());
    assert!(
        gtls,
        "rsyslog's GnuTLS driver (lmnsd_gtls.so) not found: {INSTALL}"
    );
    path
}

/// Runs `openssl` with `args` (split at spaces) in `dir`.
fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const P256: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

/// A CA: `NAME.pem` and `NAME.key`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!("req -x509 {P256} -keyout {name}.key -out {name}.pem -days 2 -subj /CN={name}"),
    );
}

/// `NAME.pem` and `NAME.key` for 127.0.0.1 and localhost, signed by the CA `ca`, for
/// `usage` (`serverAuth` or `clientAuth`).
fn make_cert(dir: &Path, ca: &str, name: &str, usage: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &format!("req {P256} -keyout {name}.key -out {name}.csr -subj /CN=localhost"),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -set_serial 2 -days 2 \
             -out {name}.pem -extfile {name}.ext"
        ),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join(format!("{name}.key"));
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Which inputs the collector listens with.
#[derive(Clone, Copy)]
enum Inputs {
    /// imtcp with GnuTLS, mode 1 (TLS), clients anonymous.
    Tls,
    /// The same, clients must present a certificate from the CA (`x509/certvalid`).
    TlsClientCert,
    /// imudp and plain imtcp on the same port number.
    Plain,
}

/// An rsyslogd in the foreground, writing each received message raw to `out.log`.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    inputs: Inputs,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16, inputs: Inputs) -> Self {
        let mut r = Self {
            dir: dir.to_path_buf(),
            port,
            inputs,
            child: None,
        };
        r.restart();
        r
    }

    fn config(&self) -> String {
        let d = self.dir.display();
        let port = self.port;
        let auth = match self.inputs {
            Inputs::TlsClientCert => "x509/certvalid",
            _ => "anon",
        };
        let inputs = match self.inputs {
            Inputs::Tls | Inputs::TlsClientCert => format!(
                "global(workDirectory=\"{d}/work\" defaultNetstreamDriverCAFile=\"{d}/ca.pem\"
                        defaultNetstreamDriverCertFile=\"{d}/server.pem\"
                        defaultNetstreamDriverKeyFile=\"{d}/server.key\")
                 module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\"
                        streamDriver.authMode=\"{auth}\")
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"remote\")"
            ),
            Inputs::Plain => format!(
                "global(workDirectory=\"{d}/work\")
                 module(load=\"imtcp\")
                 module(load=\"imudp\")
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"remote\")
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"remote\")"
            ),
        };
        format!(
            "{inputs}
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")
             ruleset(name=\"remote\") {{
                 action(type=\"omfile\" file=\"{d}/out.log\" template=\"raw\")
             }}\n"
        )
    }

    /// Starts rsyslogd (again) and waits until its TCP port accepts connections.
    fn restart(&mut self) {
        std::fs::create_dir_all(self.dir.join("work")).unwrap();
        let conf = self.dir.join("rsyslog.conf");
        std::fs::write(&conf, self.config()).unwrap();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslog.stderr"))
            .unwrap();
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(self.dir.join("rsyslog.pid"))
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().unwrap())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start rsyslogd: {e}; {INSTALL}"));
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rsyslogd exited ({status}): {}", self.stderr());
            }
            assert!(
                start.elapsed() < WAIT,
                "rsyslogd did not listen: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills rsyslogd (SIGKILL: no goodbye to its clients beyond the kernel closing sockets).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslog.stderr")).unwrap_or_default()
    }

    /// The messages received so far.
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The entry id in a received message.
fn id_of(line: &str) -> u64 {
    let rest = line
        .split_once("[sightline@32473 id=\"")
        .unwrap_or_else(|| panic!("no structured data in {line:?}"))
        .1;
    rest.split('"').next().unwrap().parse().unwrap()
}

/// The ids received from `app`, in arrival order.
fn ids(r: &Rsyslog, app: &str) -> Vec<u64> {
    r.lines()
        .iter()
        .filter(|l| l.contains(&format!(" {app} ")))
        .map(|l| id_of(l))
        .collect()
}

/// Waits until every id in `1..=n` arrived from `app`; returns the ids in arrival order.
async fn wait_for_ids(r: &Rsyslog, app: &str, n: u64) -> Vec<u64> {
    let start = Instant::now();
    loop {
        let got = ids(r, app);
        let set: HashSet<u64> = got.iter().copied().collect();
        if (1..=n).all(|i| set.contains(&i)) {
            return got;
        }
        assert!(
            start.elapsed() < WAIT,
            "ids 1..={n} did not all arrive; got {got:?}\nrsyslog: {}",
            r.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_status(rx: &mut watch::Receiver<Status>, what: &str, f: impl Fn(&Status) -> bool) {
    let reached = matches!(
        tokio::time::timeout(WAIT, rx.wait_for(|s| f(s))).await,
        Ok(Ok(_))
    );
    assert!(
        reached,
        "exporter never reached: {what}; last {:?}",
        *rx.borrow()
    );
}

/// A relay's data: the database the test writes entries into, and the exporter's settings.
struct Relay {
    dir: PathBuf,
    db: Database,
    wake: Arc<Notify>,
}

impl Relay {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            dir: dir.to_path_buf(),
            db: Database::create(&dir.join("relay.db")).unwrap(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Records `n` entries (as `relay user add` would) and wakes the exporter.
    fn record(&self, n: usize) {
        for i in 0..n {
            audit::record(
                &self.db,
                1_700_000_000,
                "cli",
                "user.add",
                Some(&format!("u{i}")),
                None,
            )
            .unwrap();
        }
        self.wake.notify_one();
    }

    /// Starts an exporter with `settings` (TOML of the `[syslog]` table).
    fn export(&self, settings: &str) -> (tokio::task::JoinHandle<()>, watch::Receiver<Status>) {
        let config: SyslogConfig = toml::from_str(settings).unwrap();
        let source = AuditTable::new(Database::open(&self.dir.join("relay.db")).unwrap());
        let exporter =
            Exporter::new(&config, Box::new(source), Cursor::new(self.cursor())).unwrap();
        let status = exporter.status();
        (tokio::spawn(exporter.run(self.wake.clone())), status)
    }

    fn cursor(&self) -> PathBuf {
        self.dir.join("syslog.cursor")
    }
}

fn tls_settings(dir: &Path, port: u16, ca: &str) -> String {
    format!(
        "url = \"tls://127.0.0.1:{port}\"\nca_file = \"{}/{ca}.pem\"\nhostname = \"relay-test\"",
        dir.display()
    )
}

/// A TLS collector with a certificate from the CA `ca`.
fn tls_collector(dir: &Path) -> Rsyslog {
    make_ca(dir, "ca");
    make_cert(dir, "ca", "server", "serverAuth");
    Rsyslog::start(dir, free_port(), Inputs::Tls)
}

fn tls_rsyslog_dir(dir: &Path) -> PathBuf {
    let r = dir.join("rsyslog");
    std::fs::create_dir_all(&r).unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_delivers_every_entry_in_order_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tls_rsyslog_dir(tmp.path());
    let collector = tls_collector(&certs);
    let relay = Relay::new(&tmp.path().join("relay"));
    relay.record(20); // a backlog from before the exporter started
    let (task, mut status) = relay.export(&tls_settings(&certs, collector.port, "ca"));
    relay.record(30);
    let got = wait_for_ids(&collector, "sightline-relay", 50).await;
    assert_eq!(got, (1..=50).collect::<Vec<_>>(), "in order, each once");
    wait_status(&mut status, "cursor at 50", |s| s.delivered == 50).await;
    assert_eq!(std::fs::read_to_string(relay.cursor()).unwrap(), "50\n");
    let first = &collector.lines()[0];
    assert!(
        first.starts_with("<85>1 2023-11-14T22:13:20Z relay-test sightline-relay "),
        "{first}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&first[first.find("] {").unwrap() + 2..]).unwrap();
    assert_eq!(json["id"], 1);
    assert_eq!(json["action"], "user.add");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_and_a_relay_restart_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tls_rsyslog_dir(tmp.path());
    let mut collector = tls_collector(&certs);
    let relay = Relay::new(&tmp.path().join("relay"));
    let settings = tls_settings(&certs, collector.port, "ca");
    let (task, mut status) = relay.export(&settings);
    relay.record(10);
    wait_for_ids(&collector, "sightline-relay", 10).await;
    wait_status(&mut status, "cursor at 10", |s| s.delivered == 10).await;

    // The collector goes away; entries keep coming and wait in the audit table.
    collector.kill();
    relay.record(15);
    wait_status(&mut status, "collector seen down", |s| {
        matches!(s.link, LinkState::Down(_))
    })
    .await;
    assert_eq!(
        status.borrow().delivered,
        10,
        "nothing counted as sent while down"
    );
    collector.restart();
    let got = wait_for_ids(&collector, "sightline-relay", 25).await;
    let mut seen = HashSet::new();
    let first_seen: Vec<u64> = got.into_iter().filter(|i| seen.insert(*i)).collect();
    assert_eq!(
        first_seen,
        (1..=25).collect::<Vec<_>>(),
        "nothing lost, in order"
    );
    wait_status(&mut status, "cursor at 25", |s| s.delivered == 25).await;

    // The relay stops; a new one resumes from the cursor file, not from the start.
    task.abort();
    let _ = task.await;
    relay.record(5);
    let (task, mut status) = relay.export(&settings);
    wait_status(&mut status, "cursor at 30", |s| s.delivered == 30).await;
    let got = wait_for_ids(&collector, "sightline-relay", 30).await;
    for id in 26..=30 {
        assert_eq!(got.iter().filter(|&&i| i == id).count(), 1, "id {id} once");
    }
    assert_eq!(
        got.iter().filter(|&&i| i <= 25).count(),
        got.len() - 5,
        "no resend of old ids"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_plain_tcp_deliver() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let collector = Rsyslog::start(&tmp.path().join("rsyslog"), port, Inputs::Plain);
    // TCP first: once its entries arrive, rsyslog is fully up for the UDP ones too.
    let tcp = Relay::new(&tmp.path().join("tcp"));
    tcp.record(10);
    let (tcp_task, _) = tcp.export(&format!(
        "url = \"tcp://127.0.0.1:{port}\"\napp_name = \"relay-tcp\"\nfacility = \"local3\""
    ));
    let got = wait_for_ids(&collector, "relay-tcp", 10).await;
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    let udp = Relay::new(&tmp.path().join("udp"));
    let (udp_task, mut status) = udp.export(&format!(
        "url = \"udp://127.0.0.1:{port}\"\napp_name = \"relay-udp\""
    ));
    wait_status(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    udp.record(10);
    let got = wait_for_ids(&collector, "relay-udp", 10).await;
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    let tcp_line = collector
        .lines()
        .into_iter()
        .find(|l| l.contains("relay-tcp"))
        .unwrap();
    assert!(tcp_line.starts_with("<157>1 "), "local3 notice: {tcp_line}");
    tcp_task.abort();
    udp_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_the_ca_did_not_sign_is_refused_and_gets_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tls_rsyslog_dir(tmp.path());
    let collector = tls_collector(&certs);
    make_ca(&certs, "other-ca");
    let relay = Relay::new(&tmp.path().join("relay"));
    relay.record(3);
    let (task, mut status) = relay.export(&tls_settings(&certs, collector.port, "other-ca"));
    wait_status(&mut status, "refused", |s| {
        matches!(s.link, LinkState::Down(_))
    })
    .await;
    let LinkState::Down(reason) = status.borrow().link.clone() else {
        unreachable!()
    };
    assert!(reason.contains("TLS handshake"), "{reason}");
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    assert!(reason.contains("ca_file"), "{reason}");
    assert_eq!(status.borrow().delivered, 0);
    assert!(!relay.cursor().exists());
    task.abort();
    assert!(collector.lines().is_empty(), "{:?}", collector.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_wants_a_client_certificate_gets_entries_only_with_one() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tls_rsyslog_dir(tmp.path());
    make_ca(&certs, "ca");
    make_cert(&certs, "ca", "server", "serverAuth");
    make_cert(&certs, "ca", "client", "clientAuth");
    let collector = Rsyslog::start(&certs, free_port(), Inputs::TlsClientCert);
    let settings = tls_settings(&certs, collector.port, "ca");

    // Without a certificate the collector drops the connection after the handshake; the
    // entries written count as nothing and wait.
    let anonymous = Relay::new(&tmp.path().join("anonymous"));
    anonymous.record(3);
    let (task, mut status) = anonymous.export(&settings);
    wait_status(&mut status, "refused", |s| {
        matches!(s.link, LinkState::Down(_))
    })
    .await;
    let LinkState::Down(reason) = status.borrow().link.clone() else {
        unreachable!()
    };
    assert!(reason.contains("closed the connection"), "{reason}");
    task.abort();
    let _ = task.await;
    assert_eq!(status.borrow().delivered, 0, "nothing counted as delivered");
    assert!(!anonymous.cursor().exists());

    let d = certs.display();
    let with_cert = Relay::new(&tmp.path().join("with-cert"));
    with_cert.record(5);
    let (task, mut status) = with_cert.export(&format!(
        "{settings}\ncert_file = \"{d}/client.pem\"\nkey_file = \"{d}/client.key\"\napp_name = \"with-cert\""
    ));
    let got = wait_for_ids(&collector, "with-cert", 5).await;
    assert_eq!(got, (1..=5).collect::<Vec<_>>());
    wait_status(&mut status, "cursor at 5", |s| s.delivered == 5).await;
    task.abort();
    assert!(
        ids(&collector, "sightline-relay").is_empty(),
        "the anonymous relay got nothing in"
    );
}

//! Networks for the firewall and proxy tests: a network namespace per "customer site" joined to
//! this host by a veth pair (the host side is `10.213.N.1`, the site `10.213.N.2`), an optional
//! nftables firewall inside it, and the real middleboxes a help desk meets: squid (a corporate
//! proxy, with or without Basic authentication), haproxy (an L4 proxy sending PROXY v2) and
//! nginx (terminating TLS and forwarding WebSocket). Each is started on the host side address
//! of its site, from a temporary directory, in the foreground, and killed when dropped.
//!
//! Needs root (`ip netns`, nftables) and `iproute2 nftables squid haproxy nginx-light openssl`
//! (installed by `./dev`). The certificates come from `openssl` with the site's IP address as
//! subject alternative name; clients trust them through `SSL_CERT_FILE`.

use crate::Proc;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Runs `program args...`; panics with its output when it fails.
pub fn must(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace joined to the host by a veth pair; deleted when dropped.
#[derive(Debug)]
pub struct Site {
    /// The namespace's name.
    pub name: String,
    /// The host's side of the link (the site's only way out).
    pub host: Ipv4Addr,
    /// The site's own address.
    pub addr: Ipv4Addr,
    /// The host's end of the veth pair.
    link: String,
}

impl Site {
    /// A fresh namespace with `lo` up and a /24 link to the host, no default route: from the
    /// site, only the host's side of the link can be reached.
    /// (Not `Default`: it creates a namespace and a link on the machine.)
    #[allow(clippy::new_without_default)]
    pub fn new() -> Site {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() + NEXT.fetch_add(1, Ordering::SeqCst) * 7) % 250 + 1;
        let name = format!("slt{}-{n}", std::process::id() % 100_000);
        let (outer, inner) = (
            format!("sh{n}x{}", std::process::id() % 10_000),
            format!("sn{n}"),
        );
        let host = Ipv4Addr::new(10, 213, n as u8, 1);
        let addr = Ipv4Addr::new(10, 213, n as u8, 2);
        // A link left by a killed earlier run with the same number would clash.
        let _ = Command::new("ip").args(["link", "del", &outer]).output();
        must("ip", &["netns", "add", &name]);
        let site = Site {
            name,
            host,
            addr,
            link: outer.clone(),
        };
        must(
            "ip",
            &[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ],
        );
        must("ip", &["link", "set", &inner, "netns", &site.name]);
        must("ip", &["addr", "add", &format!("{host}/24"), "dev", &outer]);
        must("ip", &["link", "set", &outer, "up"]);
        site.exec_ok(&["ip", "addr", "add", &format!("{addr}/24"), "dev", &inner]);
        site.exec_ok(&["ip", "link", "set", &inner, "up"]);
        site.exec_ok(&["ip", "link", "set", "lo", "up"]);
        site
    }

    /// Runs a command inside the namespace to completion; panics when it fails.
    pub fn exec_ok(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// A corporate firewall: the site may open TCP connections only to the ports listed
    /// (and DNS nowhere); everything else going out is dropped silently, as a firewall does.
    pub fn allow_only_ports(&self, ports: &[u16]) {
        let list = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rules = format!(
            "table inet site {{\n  chain out {{\n    type filter hook output priority 0; policy drop;\n    \
             oif \"lo\" accept\n    ct state established,related accept\n    \
             tcp dport {{ {list} }} accept\n  }}\n}}\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec nft");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair, but not at once: delete the host's end
        // first, so that a later site with the same number finds its address free.
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A test CA and a server certificate for some IP addresses, made with `openssl`.
#[derive(Debug)]
pub struct TestPki {
    /// The CA's certificate (PEM): what clients trust through `SSL_CERT_FILE`.
    pub ca: PathBuf,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

impl TestPki {
    /// Writes a CA and a server certificate for `ips` into `dir`.
    pub fn new(dir: &Path, ips: &[Ipv4Addr]) -> TestPki {
        std::fs::create_dir_all(dir).unwrap();
        let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
        must(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=Sightline test CA",
                "-keyout",
                &p("ca-key.pem"),
                "-out",
                &p("ca.pem"),
            ],
        );
        let san = ips
            .iter()
            .map(|ip| format!("IP:{ip}"))
            .collect::<Vec<_>>()
            .join(",");
        std::fs::write(
            dir.join("ext.cnf"),
            format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        must(
            "openssl",
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=relay.test",
                "-keyout",
                &p("key.pem"),
                "-out",
                &p("req.pem"),
            ],
        );
        must(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &p("req.pem"),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca-key.pem"),
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                &p("ext.cnf"),
                "-out",
                &p("cert.pem"),
            ],
        );
        // Key files are owner-only, as the relay requires.
        for key in ["ca-key.pem", "key.pem"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        TestPki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, what: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} does not listen on {addr}: {}", what.name, what.stderr());
}

/// A directory the middlebox's own unprivileged user can read and write (squid drops root).
fn open_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// squid as a corporate proxy on `listen`, allowing CONNECT to `ports` only; with `user`, Basic
/// authentication (an htpasswd-style file checked by squid's own `basic_ncsa_auth`).
#[derive(Debug)]
pub struct Squid {
    /// The running squid.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Squid {
    /// Starts squid; returns once it accepts connections.
    pub fn start(
        dir: &Path,
        listen: SocketAddr,
        ports: &[u16],
        user: Option<(&str, &str)>,
    ) -> Squid {
        open_dir(dir);
        let d = dir.display();
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let auth = match user {
            Some((name, password)) => {
                let out = Command::new("openssl")
                    .args(["passwd", "-apr1", password])
                    .output()
                    .unwrap();
                let hash = String::from_utf8(out.stdout).unwrap();
                std::fs::write(dir.join("passwd"), format!("{name}:{}", hash.trim())).unwrap();
                format!(
                    "auth_param basic program /usr/lib/squid/basic_ncsa_auth {d}/passwd\n\
                     auth_param basic realm corporate proxy\n\
                     acl authenticated proxy_auth REQUIRED\n\
                     http_access deny !authenticated\n"
                )
            }
            None => String::new(),
        };
        let conf = format!(
            "http_port {listen}\n\
             pid_filename {d}/squid.pid\n\
             cache_log {d}/cache.log\n\
             access_log stdio:{d}/access.log\n\
             coredump_dir {d}\n\
             cache deny all\n\
             shutdown_lifetime 0 seconds\n\
             acl relay_ports port {ports}\n\
             acl CONNECT method CONNECT\n\
             http_access deny CONNECT !relay_ports\n\
             {auth}\
             http_access allow all\n"
        );
        std::fs::write(dir.join("squid.conf"), conf).unwrap();
        let conf = dir.join("squid.conf");
        let proc = Proc::spawn(
            "squid",
            Command::new("squid")
                .args(["-N", "-d", "1", "-f"])
                .arg(&conf),
        );
        wait_listening(listen, &proc);
        Squid {
            proc,
            addr: listen,
            dir: dir.to_path_buf(),
        }
    }

    /// squid's access log (one line per request, CONNECTs included).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

/// haproxy in TCP mode on `listen`, forwarding to `backend` with a PROXY v2 header.
#[derive(Debug)]
pub struct Haproxy {
    /// The running haproxy.
    pub proc: Proc,
}

impl Haproxy {
    /// Starts haproxy; returns once it accepts connections.
    pub fn start(dir: &Path, listen: SocketAddr, backend: SocketAddr) -> Haproxy {
        std::fs::create_dir_all(dir).unwrap();
        let conf = format!(
            "global\n  log stderr format raw local0\n\
             defaults\n  mode tcp\n  log global\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend sightline\n  bind {listen}\n  default_backend relay\n\
             backend relay\n  server relay {backend} send-proxy-v2\n"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, conf).unwrap();
        let proc = Proc::spawn(
            "haproxy",
            Command::new("haproxy").arg("-db").arg("-f").arg(&path),
        );
        wait_listening(listen, &proc);
        Haproxy { proc }
    }
}

/// nginx terminating TLS on `listen` and forwarding WebSocket upgrades on `/sightline` to
/// `backend` over plain HTTP, with `X-Forwarded-For`.
#[derive(Debug)]
pub struct Nginx {
    /// The running nginx.
    pub proc: Proc,
}

impl Nginx {
    /// Starts nginx; returns once it accepts connections.
    pub fn start(dir: &Path, listen: SocketAddr, pki: &TestPki, backend: SocketAddr) -> Nginx {
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n\
             server {{\n    listen {listen} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    \
             location /sightline {{\n      proxy_pass http://{backend};\n      proxy_http_version 1.1;\n      \
             proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection \"upgrade\";\n      \
             proxy_set_header Host $host;\n      \
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      proxy_read_timeout 300s;\n    }}\n  }}\n}}\n",
            cert = pki.cert.display(),
            key = pki.key.display(),
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let proc = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&path),
        );
        wait_listening(listen, &proc);
        Nginx { proc }
    }
}

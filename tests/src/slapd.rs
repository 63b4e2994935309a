//! A throwaway OpenLDAP directory for tests: `slapd` on two free loopback ports (LDAP with
//! StartTLS, and LDAPS), with its own CA, configuration and data in a temporary directory,
//! killed when dropped.
//!
//! Needs `slapd`, `ldap-utils` and `openssl` (installed by `./dev`). Nothing of the system
//! slapd is used: a slapd started by the package's postinst on 389/636 does not matter.
//!
//! The directory (suffix `dc=example,dc=org`):
//!
//! | entry | password | attributes | groups |
//! | --- | --- | --- | --- |
//! | `uid=alice,ou=people,…` ([`ALICE`]) | `alice's ldap password` | displayName, o | helpdesk |
//! | `uid=bob,ou=people,…` ([`BOB`]) | `bob's ldap password` | displayName, o | admins |
//! | `uid=carol,ou=people,…` ([`CAROL`]) | `carol's ldap password` | none | none |
//! | `cn=relay,ou=services,…` ([`SERVICE_DN`]) | [`SERVICE_PASSWORD`] | service account | |
//! | `cn=admin,…` ([`ROOT_DN`]) | [`ROOT_PASSWORD`] | root DN (no entry) | |
//!
//! Groups are `groupOfNames` under `ou=groups`: [`HELPDESK_GROUP`] lists alice (written as
//! `UID=alice, OU=people, DC=example, DC=org`, to exercise DN comparison) and [`ADMINS_GROUP`]
//! lists bob. Access control: anyone may bind, bound users read everything but passwords,
//! anonymous users see nothing.
//!
//! slapd runs with `-d stats` rather than `-d 0`: any `-d` keeps it in the foreground, but
//! with level 0 it prints nothing, not even why it could not start. With `stats`,
//! [`Slapd::log`] holds start-up errors and a line per connection and operation (and
//! [`Slapd::connections`] counts the connections), for failure messages.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Suffix of the directory.
pub const BASE_DN: &str = "dc=example,dc=org";
/// Where the people are.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// Where the groups are.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";
/// DN template of the people, for `user_dn_template`.
pub const USER_DN_TEMPLATE: &str = "uid={user},ou=people,dc=example,dc=org";
/// Group of the help-desk operators (alice).
pub const HELPDESK_GROUP: &str = "cn=helpdesk,ou=groups,dc=example,dc=org";
/// Group of the relay administrators (bob).
pub const ADMINS_GROUP: &str = "cn=admins,ou=groups,dc=example,dc=org";
/// The directory's root DN (bypasses access control).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// Password of [`ROOT_DN`].
pub const ROOT_PASSWORD: &str = "root's ldap password";
/// A service account that may search the directory.
pub const SERVICE_DN: &str = "cn=relay,ou=services,dc=example,dc=org";
/// Password of [`SERVICE_DN`].
pub const SERVICE_PASSWORD: &str = "service account password";

/// A person in the test directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LdapUser {
    /// The `uid`, which is the user name to log in with.
    pub name: &'static str,
    /// The directory password.
    pub password: &'static str,
    /// `displayName`, if the entry has one.
    pub display_name: Option<&'static str>,
    /// `o`, if the entry has one.
    pub organisation: Option<&'static str>,
}

impl LdapUser {
    /// The entry's DN.
    pub fn dn(&self) -> String {
        format!("uid={},{PEOPLE_DN}", self.name)
    }
}

/// An operator: member of [`HELPDESK_GROUP`].
pub const ALICE: LdapUser = LdapUser {
    name: "alice",
    password: "alice's ldap password",
    display_name: Some("Alice Directory"),
    organisation: Some("Example Help Desk"),
};
/// An administrator: member of [`ADMINS_GROUP`] only.
pub const BOB: LdapUser = LdapUser {
    name: "bob",
    password: "bob's ldap password",
    display_name: Some("Bob Directory"),
    organisation: Some("Example Help Desk"),
};
/// In no group, and with neither display name nor organisation.
pub const CAROL: LdapUser = LdapUser {
    name: "carol",
    password: "carol's ldap password",
    display_name: None,
    organisation: None,
};

/// A running slapd; killed, and its directory removed, when dropped.
#[derive(Debug)]
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Child,
    ldap_port: u16,
    ldaps_port: u16,
}

impl Slapd {
    /// Creates the CA, certificate, configuration and data, starts slapd on two free loopback
    /// ports and waits until it answers over LDAPS. Panics, with slapd's output, when it
    /// cannot.
    pub fn start() -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("sightline-slapd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let ca = make_ca(d, "ca");
        server_certificate(d, &ca);

        let config = d.join("slapd.d");
        std::fs::create_dir(&config).unwrap();
        std::fs::create_dir(d.join("data")).unwrap();
        std::fs::write(d.join("config.ldif"), config_ldif(d)).unwrap();
        run_ok(
            Command::new(tool("slapadd"))
                .args(["-n", "0", "-F"])
                .arg(&config)
                .arg("-l")
                .arg(d.join("config.ldif")),
        );
        std::fs::write(d.join("data.ldif"), data_ldif()).unwrap();
        run_ok(
            Command::new(tool("slapadd"))
                .args(["-q", "-n", "1", "-F"])
                .arg(&config)
                .arg("-l")
                .arg(d.join("data.ldif")),
        );

        let log = d.join("slapd.log");
        let mut failures = String::new();
        for _ in 0..5 {
            let (ldap_port, ldaps_port) = (free_port(), free_port());
            if ldap_port == ldaps_port {
                continue;
            }
            let mut child = spawn_slapd(d, &log, ldap_port, ldaps_port);
            match wait_ready(&mut child, &[ldap_port, ldaps_port]) {
                Ok(()) => {
                    let slapd = Slapd {
                        dir,
                        child,
                        ldap_port,
                        ldaps_port,
                    };
                    slapd.check_ldaps();
                    return slapd;
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let output = std::fs::read_to_string(&log).unwrap_or_default();
                    failures.push_str(&format!("{why}; slapd's output:\n{output}\n"));
                    // Someone may have taken a port between our check and slapd's bind.
                    if !output.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("slapd did not start: {failures}");
    }

    /// The temporary directory holding the configuration, certificates and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ldap://127.0.0.1:PORT` (plain; StartTLS available).
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The port of [`Slapd::ldap_url`].
    pub fn ldap_port(&self) -> u16 {
        self.ldap_port
    }

    /// The port of [`Slapd::ldaps_url`].
    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
    }

    /// PEM certificate of the CA that signed the server's certificate (for `localhost` and
    /// `127.0.0.1`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("ca.crt")
    }

    /// Writes [`SERVICE_PASSWORD`] and a newline to a new file of mode 0600 and returns its
    /// path (for `bind_password_file`).
    pub fn service_password_file(&self) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir().join("service-password");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        writeln!(file, "{SERVICE_PASSWORD}").unwrap();
        path
    }

    /// slapd's output so far (start-up errors, and a `stats` line per connection and
    /// operation).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("slapd.log")).unwrap_or_default()
    }

    /// How many connections slapd has accepted so far (start-up checks made three).
    pub fn connections(&self) -> usize {
        self.log().matches(" ACCEPT from ").count()
    }

    /// An `[ldap]` table for the relay's configuration: LDAPS, this CA, the DN template, the
    /// helpdesk group as operators and the admins group as administrators.
    pub fn ldap_toml(&self) -> String {
        self.ldap_toml_with(&[])
    }

    /// [`Slapd::ldap_toml`] with changes: `(key, Some(value))` sets a key (replacing it or
    /// adding it at the end), `(key, None)` removes it. Values are TOML, so strings need
    /// quotes: use [`toml_str`].
    pub fn ldap_toml_with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut keys: Vec<(String, String)> = vec![
            ("url".into(), toml_str(&self.ldaps_url())),
            (
                "ca_file".into(),
                toml_str(&self.ca_file().to_string_lossy()),
            ),
            ("user_dn_template".into(), toml_str(USER_DN_TEMPLATE)),
            ("operator_group".into(), toml_str(HELPDESK_GROUP)),
            ("admin_group".into(), toml_str(ADMINS_GROUP)),
            ("timeout_secs".into(), "5".into()),
        ];
        for (key, value) in changes {
            let at = keys.iter().position(|(k, _)| k == key);
            match (at, value) {
                (Some(i), Some(v)) => keys[i].1 = v.to_string(),
                (None, Some(v)) => keys.push((key.to_string(), v.to_string())),
                (Some(i), None) => {
                    keys.remove(i);
                }
                (None, None) => {}
            }
        }
        let mut out = String::from("[ldap]\n");
        for (k, v) in keys {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out
    }

    /// Runs `ldapsearch` over LDAPS bound as [`ROOT_DN`] with extra arguments (base, filter,
    /// attributes...) and returns its LDIF output; panics when it fails.
    pub fn ldapsearch(&self, args: &[&str]) -> String {
        let out = Command::new(tool("ldapsearch"))
            .args(["-x", "-LLL", "-o", "nettimeout=5", "-H"])
            .arg(self.ldaps_url())
            .args(["-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .args(args)
            .env("LDAPTLS_CACERT", self.ca_file())
            .env("LDAPTLS_REQCERT", "demand")
            .output()
            .unwrap_or_else(|e| panic!("cannot run ldapsearch (apt-get install ldap-utils): {e}"));
        assert!(
            out.status.success(),
            "ldapsearch {args:?} failed: {}{}\nslapd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces `attribute` of the entry `dn` with `value`, as the directory's administrator
    /// would (any UTF-8, control characters and line breaks included: `ldapmodify` reads the
    /// value from a file, byte for byte); panics when slapd refuses.
    pub fn set_attribute(&self, dn: &str, attribute: &str, value: &str) {
        let file = self.dir().join(format!("value-{attribute}"));
        std::fs::write(&file, value).unwrap();
        let ldif = format!(
            "dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}:< file://{}\n-\n",
            file.display()
        );
        let mut child = Command::new(tool("ldapmodify"))
            .args(["-x", "-o", "nettimeout=5", "-H"])
            .arg(self.ldaps_url())
            .args(["-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .env("LDAPTLS_CACERT", self.ca_file())
            .env("LDAPTLS_REQCERT", "demand")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ldapmodify (apt-get install ldap-utils): {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify {dn} {attribute} failed: {}{}\nslapd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// A search over LDAPS with certificate verification, so that a broken TLS set-up fails
    /// here and not in the test using it.
    fn check_ldaps(&self) {
        let out = self.ldapsearch(&["-s", "base", "-b", BASE_DN, "(objectClass=*)", "dc"]);
        assert!(
            out.contains("dc: example"),
            "unexpected answer from slapd: {out}"
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a throwaway CA in `dir` (`NAME.crt`, `NAME.key`; ECDSA P-256, valid 30 days) and
/// returns the certificate's path. Also useful on its own as a CA that did *not* sign a
/// server's certificate.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let cert = dir.join(format!("{name}.crt"));
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
            .arg("-keyout")
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(&cert)
            .args(["-subj", &format!("/CN=Sightline test CA {name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    );
    cert
}

/// A TOML basic string holding `s`.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `server.crt`/`server.key` in `dir`, for `localhost` and `127.0.0.1`, signed by `ca`.
fn server_certificate(dir: &Path, ca: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(dir.join("server.key"))
            .arg("-out")
            .arg(dir.join("server.csr")),
    );
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-CAcreateserial"])
            .arg("-in")
            .arg(dir.join("server.csr"))
            .arg("-CA")
            .arg(ca)
            .arg("-CAkey")
            .arg(ca.with_extension("key"))
            .arg("-extfile")
            .arg(dir.join("server.ext"))
            .arg("-out")
            .arg(dir.join("server.crt")),
    );
}

/// `{SSHA}` hash of `password`, by slappasswd.
fn hash(password: &str) -> String {
    let out = run_ok(Command::new(tool("slappasswd")).args(["-s", password]));
    out.trim().to_string()
}

/// The cn=config database: modules, schema, TLS, the mdb database and its access control.
fn config_ldif(dir: &Path) -> String {
    let d = dir.display();
    let root_hash = hash(ROOT_PASSWORD);
    format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcArgsFile: {d}/slapd.args
olcTLSCertificateFile: {d}/server.crt
olcTLSCertificateKeyFile: {d}/server.key
olcTLSCACertificateFile: {d}/ca.crt

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {d}/data
olcSuffix: {BASE_DN}
olcRootDN: {ROOT_DN}
olcRootPW: {root_hash}
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"
    )
}

/// The people, the service account and the groups.
fn data_ldif() -> String {
    let mut people = String::new();
    for user in [ALICE, BOB, CAROL] {
        people.push_str(&format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
             userPassword: {pw}\n",
            dn = user.dn(),
            uid = user.name,
            pw = hash(user.password),
        ));
        if let Some(name) = user.display_name {
            people.push_str(&format!("displayName: {name}\n"));
        }
        if let Some(org) = user.organisation {
            people.push_str(&format!("o: {org}\n"));
        }
        people.push('\n');
    }
    let service_hash = hash(SERVICE_PASSWORD);
    format!(
        "dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: {PEOPLE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=services,{BASE_DN}
objectClass: organizationalUnit
ou: services

dn: {GROUPS_DN}
objectClass: organizationalUnit
ou: groups

{people}dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: relay
userPassword: {service_hash}

dn: {HELPDESK_GROUP}
objectClass: groupOfNames
cn: helpdesk
member: UID=alice, OU=people, DC=example, DC=org

dn: {ADMINS_GROUP}
objectClass: groupOfNames
cn: admins
member: {bob}
",
        bob = BOB.dn(),
    )
}

/// Starts slapd in the foreground (`-d`), its output written to `log`.
fn spawn_slapd(dir: &Path, log: &Path, ldap_port: u16, ldaps_port: u16) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(tool("slapd"))
        .args(["-d", "stats", "-h"])
        .arg(format!(
            "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
        ))
        .arg("-F")
        .arg(dir.join("slapd.d"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start slapd (apt-get install slapd): {e}"))
}

/// Waits until every port accepts connections, or slapd exits, or 20 s pass.
fn wait_ready(child: &mut Child, ports: &[u16]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pending = ports.to_vec();
    while !pending.is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("slapd exited with {status}"));
        }
        if Instant::now() > deadline {
            return Err("slapd did not listen within 20 s".to_string());
        }
        pending.retain(|&port| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    Ok(())
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of an OpenLDAP tool: slapd and friends live in /usr/sbin, which a normal user's
/// PATH often lacks.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: run ./dev, or apt-get install slapd ldap-utils openssl"
            )
        })
}

/// Runs a command, panics with its output when it fails, returns its stdout.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

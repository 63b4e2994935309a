//! A real OpenID provider and a real browser for the OpenID Connect tests, started per test
//! and killed when dropped.
//!
//! * [`OidcProvider`] runs `tests/oidc/provider.mjs`: panva's certified `oidc-provider` (npm,
//!   pinned in `tests/oidc/package-lock.json`) on Node.js, over plain http on a free
//!   127.0.0.1 port, configured by a JSON document ([`default_config`] and the schema
//!   below). The issuer is `http://127.0.0.1:PORT`; [`OidcProvider::restart`] keeps it.
//! * [`browser_login`] runs `tests/oidc/login.mjs`: `playwright-core` driving Debian's
//!   headless `chromium` through the provider's own pages (user code, device confirmation,
//!   login form, consent), until the browser is sent to the client's redirect URI or the
//!   device flow's success page shows.
//!
//! `./dev` installs `node_modules` (`npm ci` in `tests/oidc`) and `chromium`; when
//! `node_modules` is missing, [`OidcProvider::start`] runs `npm ci` itself, one test process
//! at a time (`flock`). Each provider has its own temporary directory, port, keys and
//! in-memory state: nothing is shared between parallel tests.
//!
//! # Configuration (the JSON given to [`OidcProvider::start`])
//!
//! | key | meaning |
//! | --- | --- |
//! | `clients` | array of client metadata as oidc-provider takes it (`client_id`, `client_secret`, `redirect_uris`, `grant_types`, `response_types`, `token_endpoint_auth_method`, `application_type`, `id_token_signed_response_alg`, …), plus `first_party` (bool, ours): consent is granted without a page. A client with `application_type: "native"` may use any port on a registered `http://127.0.0.1/PATH` (or `localhost`, `[::1]`) redirect URI (RFC 8252 §7.3); path and query must match |
//! | `users` | array of `{username, password, sub?, name?, email?, email_verified?, groups?, org?, mfa?, acr?, amr?, disabled?, extra_claims?}`; `sub` defaults to `username`; `mfa: true` gives `acr` [`ACR_MFA`] and `amr ["pwd","otp"]`, else [`ACR_PWD`] and `["pwd"]` (`acr`/`amr` override); `disabled: true` refuses the password; `extra_claims` are merged into the claims (when their scope allows) |
//! | `ttl` | seconds: `id_token` (3600), `access_token` (3600), `authorization_code` (60), `device_code` (600), `refresh_token` (86400), `interaction` (600), `session` (86400), `grant` (86400) |
//! | `jwks` | private JWKS used to sign (see [`generate_jwks`]); `jwks_file`: the same from a file; neither: a fresh RS256 key at each start (so a restart is a key the relay has never seen) |
//! | `acr_values` | `acr_values_supported` (default [`ACR_MFA`], [`ACR_PWD`]) |
//! | `pkce_required` | PKCE for every authorization request (default true; S256 only) |
//! | `conform_id_token_claims` | oidc-provider's `conformIdTokenClaims`: true puts the scopes' claims only in userinfo when an access token for it is issued; default false: in the ID token too |
//! | `tamper_id_token` | a misbehaving provider ([`tampering_config`]): rewrites the ID token of every token-endpoint response, `"audience"` (`aud` set to `tamper_audience`, default [`OTHER_CLIENT_ID`], signed with the provider's key), `"foreign_key"` (signed with a fresh key not in the JWKS, the header keeping the provider's `kid`), `"foreign_kid"` (the same with the fresh key's own `kid`), `"expired"` (`exp` 10 minutes ago, `iat` and `auth_time` an hour earlier, signed with the provider's key), `"replay"` (every ID token after the first is the first one again, its nonce included); prints a `tampered` event (kind) each time |
//!
//! Scopes: `openid` (sub, acr, amr, auth_time), `profile` (name, preferred_username, org),
//! `email` (email, email_verified), `groups` (groups), `offline_access`. Features on: device
//! flow (`/device/auth`, `/device`), claims parameter, introspection, revocation,
//! RP-initiated logout; response type `code` only.
//!
//! The provider prints JSON events, which [`OidcProvider::wait_event`] waits for: `login`
//! (username, sub, acr, client_id), `login_failed` (username, reason), `consent`, `aborted`,
//! `device_success`, `grant` (client_id, grant_type), `grant_error` (error,
//! error_description), `error` (an error page shown), `tampered` (kind: an ID token rewritten,
//! with `tamper_id_token`).

use crate::Proc;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The relay's client id at the provider (a confidential client).
pub const RELAY_CLIENT_ID: &str = "sightline-relay";
/// The relay's client secret (`client_secret_basic`).
pub const RELAY_CLIENT_SECRET: &str = "relay client secret for the oidc tests";
/// Another application at the same provider (tokens with the wrong audience); its consent
/// is a page with an "Allow" button.
pub const OTHER_CLIENT_ID: &str = "other-app";
/// Its client secret (`client_secret_post`).
pub const OTHER_CLIENT_SECRET: &str = "other app client secret";
/// The redirect URI path registered for both clients, on `http://127.0.0.1` with any port
/// (and on `http://[::1]`).
pub const REDIRECT_PATH: &str = "/callback";
/// The `acr` of a login with a second factor.
pub const ACR_MFA: &str = "urn:sightline:mfa";
/// The `acr` of a password-only login.
pub const ACR_PWD: &str = "urn:sightline:pwd";
/// The scopes a relay asks for.
pub const SCOPES: &str = "openid profile email groups";
/// The device authorization grant's `grant_type`.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long the provider may take to start (Node.js loading oidc-provider on a loaded
/// 2-core machine; it takes about half a second when idle).
const READY: Duration = Duration::from_secs(30);

/// A person at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidcUser {
    pub username: &'static str,
    pub password: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub org: &'static str,
    pub groups: &'static [&'static str],
    /// Logs in with a second factor: `acr` [`ACR_MFA`], `amr ["pwd","otp"]`.
    pub mfa: bool,
}

impl OidcUser {
    /// The user's entry in the configuration's `users`.
    pub fn config(&self) -> Value {
        json!({
            "username": self.username,
            "password": self.password,
            "name": self.name,
            "email": self.email,
            "org": self.org,
            "groups": self.groups,
            "mfa": self.mfa,
        })
    }
}

/// A help-desk operator, with a second factor.
pub const ALICE: OidcUser = OidcUser {
    username: "alice",
    password: "alice's oidc password",
    name: "Alice Example",
    email: "alice@example.com",
    org: "Example Corp",
    groups: &["helpdesk-operators"],
    mfa: true,
};
/// A help-desk administrator, with a second factor.
pub const CAROL: OidcUser = OidcUser {
    username: "carol",
    password: "carol's oidc password",
    name: "Carol Example",
    email: "carol@example.com",
    org: "Example Corp",
    groups: &["helpdesk-admins"],
    mfa: true,
};
/// In marketing: no help-desk group, with a second factor.
pub const BOB: OidcUser = OidcUser {
    username: "bob",
    password: "bob's oidc password",
    name: "Bob Example",
    email: "bob@example.com",
    org: "Example Corp",
    groups: &["marketing"],
    mfa: true,
};
/// A help-desk operator who logs in with a password only.
pub const DAVE: OidcUser = OidcUser {
    username: "dave",
    password: "dave's oidc password",
    name: "Dave Example",
    email: "dave@example.com",
    org: "Example Corp",
    groups: &["helpdesk-operators"],
    mfa: false,
};

/// Every user of [`default_config`].
pub const USERS: [OidcUser; 4] = [ALICE, CAROL, BOB, DAVE];

/// The configuration most tests use: the two clients, [`USERS`], default lifetimes, a fresh
/// signing key at each start.
pub fn default_config() -> Value {
    let redirect_uris = [
        format!("http://127.0.0.1{REDIRECT_PATH}"),
        format!("http://[::1]{REDIRECT_PATH}"),
    ];
    json!({
        "clients": [
            {
                "client_id": RELAY_CLIENT_ID,
                "client_secret": RELAY_CLIENT_SECRET,
                "client_name": "Sightline relay",
                "application_type": "native",
                "first_party": true,
                "redirect_uris": redirect_uris,
                "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            {
                "client_id": OTHER_CLIENT_ID,
                "client_secret": OTHER_CLIENT_SECRET,
                "client_name": "Other application",
                "application_type": "native",
                "first_party": false,
                "redirect_uris": redirect_uris,
                "grant_types": ["authorization_code", DEVICE_GRANT],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_post",
            },
        ],
        "users": USERS.iter().map(OidcUser::config).collect::<Vec<_>>(),
        "ttl": { "id_token": 3600 },
    })
}

/// `tests/oidc`, with `node_modules` installed (`npm ci` when missing, one process at a
/// time).
pub fn oidc_dir() -> PathBuf {
    let dir = crate::repo_root().join("tests").join("oidc");
    let installed = |d: &Path| d.join("node_modules").join(".package-lock.json").exists();
    if !installed(&dir) {
        // ./dev does this; here for a test run without it. flock: parallel test processes.
        let out = Command::new("flock")
            .arg(std::env::temp_dir().join("sightline-oidc-npm-ci.lock"))
            .args([
                "sh",
                "-c",
                "[ -e node_modules/.package-lock.json ] || npm ci --no-audit --no-fund",
            ])
            .current_dir(&dir)
            .output()
            .expect("flock (util-linux) and npm (Node.js 20) are needed for the OIDC tests");
        assert!(
            out.status.success() && installed(&dir),
            "npm ci in {} failed (./dev installs node_modules):\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// A private JWKS with one fresh RS256 key (`provider.mjs --generate-jwks`), for a
/// configuration's `jwks` (a key that survives a restart, or one shared by two providers).
pub fn generate_jwks() -> Value {
    let out = Command::new("node")
        .arg(oidc_dir().join("provider.mjs"))
        .arg("--generate-jwks")
        .output()
        .expect("node (Node.js 20) is needed for the OIDC tests");
    assert!(
        out.status.success(),
        "provider.mjs --generate-jwks failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--generate-jwks prints a JWKS")
}

/// A running oidc-provider; killed, and its directory removed, when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    port: u16,
    issuer: String,
    kids: Vec<String>,
    config: Value,
}

impl OidcProvider {
    /// Starts the provider on a free port with `config` and waits until it listens. Panics,
    /// with the provider's output, when it does not start in time.
    pub fn start(config: &Value) -> OidcProvider {
        let dir = tempfile::Builder::new()
            .prefix("sightline-oidc-")
            .tempdir()
            .unwrap();
        let mut provider = OidcProvider {
            dir,
            proc: None,
            port: 0,
            issuer: String::new(),
            kids: Vec::new(),
            config: Value::Null,
        };
        provider.launch(config, 0);
        provider
    }

    fn launch(&mut self, config: &Value, port: u16) {
        let path = self.dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        let script = oidc_dir().join("provider.mjs");
        let started = Instant::now();
        let mut proc = Proc::spawn(
            "oidc-provider",
            Command::new("node")
                .arg(&script)
                .arg(&path)
                .arg(port.to_string())
                .current_dir(self.dir.path()),
        );
        let ready = proc.wait_event("ready", READY);
        let issuer = ready["issuer"].as_str().unwrap().to_string();
        let chosen = u16::try_from(ready["port"].as_u64().unwrap()).unwrap();
        assert!(
            port == 0 || chosen == port,
            "provider on {chosen}, asked for {port}"
        );
        eprintln!("oidc-provider {issuer} ready in {:?}", started.elapsed());
        self.port = chosen;
        self.issuer = issuer;
        self.kids = ready["kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap_or_default().to_string())
            .collect();
        self.config = config.clone();
        self.proc = Some(proc);
    }

    /// `http://127.0.0.1:PORT` (the same after [`OidcProvider::restart`]).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The `kid`s of its signing keys.
    pub fn kids(&self) -> &[String] {
        &self.kids
    }

    /// Kills the provider (the issuer is then unreachable); its port is free again.
    pub fn stop(&mut self) {
        drop(self.proc.take());
    }

    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::is_running)
    }

    /// Stops it if running, and starts it again on the same port (same issuer) with
    /// `config`. Everything it held (sessions, codes, grants, and the signing key unless
    /// `config` has `jwks`) is gone.
    pub fn restart(&mut self, config: &Value) {
        self.stop();
        let port = self.port;
        // The port was free a moment ago; another process may take it in between (rare).
        self.launch(config, port);
    }

    /// The provider's process (its JSON events on stdout, its stderr).
    pub fn proc(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("the provider is stopped")
    }

    /// Waits for a JSON event of the provider (see the module documentation).
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Value {
        self.proc().wait_event(name, timeout)
    }

    /// What the provider wrote on stderr (oidc-provider's warnings, server errors).
    pub fn stderr(&self) -> String {
        self.proc.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        let (status, doc) = get_json(&format!("{}/.well-known/openid-configuration", self.issuer));
        assert_eq!(status, 200, "discovery: {doc}");
        doc
    }

    /// A device authorization request (RFC 8628 §3.1) for the relay's client: the answer
    /// (device_code, user_code, verification_uri, verification_uri_complete, expires_in).
    pub fn device_authorization(&self, scope: &str) -> Value {
        let (status, answer) = post_form(
            &format!("{}/device/auth", self.issuer),
            Some((RELAY_CLIENT_ID, RELAY_CLIENT_SECRET)),
            &[("scope", scope)],
        );
        assert_eq!(status, 200, "device authorization: {answer}");
        answer
    }

    /// An authorization URL of the code flow for `client_id` with PKCE (S256).
    pub fn authorization_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> String {
        let params = [
            ("client_id", client_id),
            ("response_type", "code"),
            ("scope", scope),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ];
        format!("{}/auth?{}", self.issuer, form_urlencode(&params))
    }

    /// [`browser_login`] (a convenience: the provider is not needed for it).
    pub fn browser_login(
        &self,
        url: &str,
        user: &str,
        password: &str,
        user_code: Option<&str>,
    ) -> Value {
        browser_login(url, user, password, user_code)
    }
}

/// What [`browser_login_with`] does beyond typing the user name and password.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions<'a> {
    /// The device flow's user code, typed in when the page asks for one.
    pub user_code: Option<&'a str>,
    /// Stop at the first navigation to a URL starting with this (default: a navigation
    /// away from the provider carrying `code` or `error`).
    pub until: Option<&'a str>,
    /// "Deny" rather than "Allow" on a consent page.
    pub deny: bool,
    /// The browser's own time limit (default 60 s).
    pub timeout: Option<Duration>,
}

/// Headless Chromium signs in as `user` with `password` at the provider's pages, starting
/// at `url` (an authorization URL, or the device flow's `verification_uri` with
/// `user_code`, or `verification_uri_complete`). Returns `login.mjs`'s outcome:
/// `{"ok": true, "outcome": "redirected", "url": .., "params": {"code", "state", "iss"}}`,
/// `{"ok": true, "outcome": "device_success"}`, or `{"ok": false, "outcome":
/// "login_failed" | "redirect_error" | "provider_error" | "user_code_failed" |
/// "missing_code" | "timeout" | "unreachable" | "browser_error", "error": .., "page": ..}`
/// (see `tests/oidc/login.mjs`); its stderr (a line per page) is in `"log"`. Panics only
/// when the browser cannot run at all. `SIGHTLINE_SCREENSHOTS=DIR` keeps a
/// screenshot of each failure there.
pub fn browser_login(url: &str, user: &str, password: &str, user_code: Option<&str>) -> Value {
    browser_login_with(
        url,
        user,
        password,
        &LoginOptions {
            user_code,
            ..LoginOptions::default()
        },
    )
}

/// [`browser_login`] with more options.
pub fn browser_login_with(url: &str, user: &str, password: &str, opts: &LoginOptions) -> Value {
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(60));
    let mut cmd = Command::new("node");
    cmd.arg(oidc_dir().join("login.mjs"))
        .args([url, user, password])
        .arg("--timeout")
        .arg(timeout.as_secs().max(1).to_string());
    if let Some(code) = opts.user_code {
        cmd.args(["--code", code]);
    }
    if let Some(prefix) = opts.until {
        cmd.args(["--until", prefix]);
    }
    if opts.deny {
        cmd.arg("--deny");
    }
    let started = Instant::now();
    let mut proc = Proc::spawn(&format!("login.mjs as {user}"), &mut cmd);
    // its own limit, Chromium's start (30 s at most) and a margin
    let status = proc.wait_exit(timeout + Duration::from_secs(45));
    let line = proc.next_line(Duration::from_secs(5));
    let log = proc.stderr();
    let Some(line) = line else {
        panic!("login.mjs printed no outcome ({status}); stderr:\n{log}");
    };
    let mut outcome: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("login.mjs: not JSON ({e}): {line}; stderr:\n{log}"));
    assert!(
        status.code() != Some(2),
        "the browser could not run (chromium is installed by ./dev; SIGHTLINE_CHROMIUM names \
         another): {outcome}; stderr:\n{log}"
    );
    eprintln!(
        "browser login as {user}: {} in {:?}",
        outcome["outcome"],
        started.elapsed()
    );
    outcome["log"] = Value::String(log);
    outcome
}

/// A PKCE pair (RFC 7636): a random `verifier` and its S256 `challenge`.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair (the challenge computed by `openssl dgst -sha256`, independently of the
    /// code under test).
    pub fn new() -> Pkce {
        use rand_core::RngCore;
        let mut bytes = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut bytes);
        let verifier = b64url_encode(&bytes);
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(verifier.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.len() == 32,
            "openssl dgst"
        );
        Pkce {
            verifier,
            challenge: b64url_encode(&out.stdout),
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// A random URL-safe string (state, nonce).
pub fn random_token() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    b64url_encode(&bytes)
}

/// A loopback redirect URI's listener (what a native app opens, RFC 8252 §7.3): on
/// `127.0.0.1` and a free port, answering every request with a small page, from a thread,
/// until dropped.
#[derive(Debug)]
pub struct RedirectListener {
    port: u16,
    requests: Receiver<Redirect>,
    stop: Arc<AtomicBool>,
}

/// A request the [`RedirectListener`] got.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's parameters (decoded).
    pub params: HashMap<String, String>,
}

impl RedirectListener {
    pub fn start() -> RedirectListener {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, requests) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(r) = answer(stream) {
                            if tx.send(r).is_err() {
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
        });
        RedirectListener {
            port,
            requests,
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/callback` ([`REDIRECT_PATH`]).
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{REDIRECT_PATH}", self.port)
    }

    /// The next request to [`REDIRECT_PATH`] (others, like `/favicon.ico`, are answered
    /// and skipped); panics after `timeout`.
    pub fn wait(&self, timeout: Duration) -> Redirect {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.requests.recv_timeout(left) {
                Ok(r) if r.path == REDIRECT_PATH => return r,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no request to {} in {timeout:?}", self.redirect_uri())
    }
}

impl Drop for RedirectListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request head, answers it, and returns what it asked for.
fn answer(mut stream: TcpStream) -> Option<Redirect> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut first = text.lines().next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let body = "<!DOCTYPE html><html><body id=\"redirected\"><p>Signed in: you can close \
                this window.</p></body></html>";
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    Some(Redirect {
        method,
        path: path.to_string(),
        params: parse_query(query),
    })
}

/// `GET url` with curl; the status and the body as JSON (a JSON string when it is not JSON).
pub fn get_json(url: &str) -> (u16, Value) {
    curl(Command::new("curl").arg(url))
}

/// `POST url` of an `application/x-www-form-urlencoded` body with curl, with HTTP Basic
/// client authentication when `basic` is `Some((client_id, secret))`; the status and the
/// body as JSON (a JSON string when it is not JSON).
pub fn post_form(url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.arg(url);
    if let Some((id, secret)) = basic {
        // RFC 6749 §2.3.1: each form-urlencoded, then Basic.
        cmd.arg("--user").arg(format!(
            "{}:{}",
            form_urlencode_one(id),
            form_urlencode_one(secret)
        ));
    }
    for (k, v) in form {
        cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    curl(&mut cmd)
}

fn curl(cmd: &mut Command) -> (u16, Value) {
    let out = cmd
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(["--write-out", "\n%{http_code}"])
        .output()
        .expect("curl (installed by ./dev)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {:?} failed: {}{text}",
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status: u16 = status.trim().parse().unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    (status, body)
}

/// The claims of a JWT, decoded without any check (what the tests look at; the code under
/// test does the checking).
pub fn jwt_claims(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// The protected header of a JWT (alg, kid), decoded without any check.
pub fn jwt_header(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, i: usize) -> Value {
    let part = jwt
        .split('.')
        .nth(i)
        .unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    let bytes = b64url_decode(part).unwrap_or_else(|| panic!("not base64url: {part}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part {i} is not JSON: {e}"))
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// base64url, with or without padding; None when it is not.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = B64URL.iter().position(|&b| b == c)?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    Some(out)
}

/// `k=v&k=v`, form-urlencoded.
pub fn form_urlencode(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", form_urlencode_one(k), form_urlencode_one(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_urlencode_one(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string's parameters, decoded (`+` is a space).
pub fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A relay whose `[[oidc]]` table "corp" is `provider`, as an administrator would write it.
pub fn relay_for(provider: &OidcProvider, dir: &Path) -> crate::Relay {
    relay_with(provider, dir, "")
}

/// [`relay_for`], with `extra` before the table in relay.toml.
pub fn relay_with(provider: &OidcProvider, dir: &Path, extra: &str) -> crate::Relay {
    relay_with_table(provider, dir, extra, "")
}

/// [`relay_with`], with `table` as more keys of the `[[oidc]]` table ("auto_provision =
/// true"). The file is `relay.dir/relay.toml`, for `relay user add --oidc corp --config`.
pub fn relay_with_table(
    provider: &OidcProvider,
    dir: &Path,
    extra: &str,
    table: &str,
) -> crate::Relay {
    let secret = dir.join("oidc-corp.secret");
    std::fs::write(&secret, format!("{RELAY_CLIENT_SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        r#"{extra}
[[oidc]]
name = "corp"
issuer = "{issuer}"
client_id = "{RELAY_CLIENT_ID}"
client_secret_file = "{secret}"
scopes = ["openid", "profile", "email", "groups"]
organisation_claim = "org"
operator_group = "helpdesk-operators"
admin_group = "helpdesk-admins"
require_acr = ["{ACR_MFA}"]
mfa_replaces_totp = true
max_age = 3600
{table}
[oidc.group_permissions]
"helpdesk-admins" = ["view"]
"#,
        issuer = provider.issuer(),
        secret = secret.display(),
    );
    let mut relay = crate::Relay::new(Some(&config));
    relay.start();
    relay
}

/// How a misbehaving provider rewrites its ID tokens (`tamper_id_token`, see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// `aud` is another client's ([`OTHER_CLIENT_ID`]), signed with the provider's key.
    Audience,
    /// Signed with a key not in the JWKS, the header naming the provider's key id.
    ForeignKey,
    /// Signed with a key not in the JWKS, the header naming that key's own id.
    ForeignKid,
    /// Expired 10 minutes ago, signed with the provider's key.
    Expired,
    /// Every ID token after the first is the first one again.
    Replay,
}

impl Tamper {
    /// The value of `tamper_id_token`.
    pub fn name(self) -> &'static str {
        match self {
            Tamper::Audience => "audience",
            Tamper::ForeignKey => "foreign_key",
            Tamper::ForeignKid => "foreign_kid",
            Tamper::Expired => "expired",
            Tamper::Replay => "replay",
        }
    }
}

/// [`default_config`] for a provider that rewrites every ID token it issues as `tamper`
/// says.
pub fn tampering_config(tamper: Tamper) -> Value {
    let mut config = default_config();
    config["tamper_id_token"] = Value::String(tamper.name().to_owned());
    config
}

/// `relay user add NAME --oidc corp --config RELAY.TOML --json EXTRA...` on a relay made by
/// [`relay_with_table`] (or [`relay_for`]): an account that signs in with the provider
/// "corp". Returns what the command printed, as JSON.
pub fn add_oidc_user(relay: &crate::Relay, name: &str, extra: &[&str]) -> Value {
    let config = relay.dir.path().join("relay.toml");
    let config = config.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "user", "add", name, "--oidc", "corp", "--config", config, "--json",
    ];
    args.extend_from_slice(extra);
    let (st, out, err) = relay.cli(&args, None);
    assert!(st.success(), "relay user add --oidc failed: {err}");
    serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("relay user add --json printed {out:?}: {e}"))
}

/// A `$BROWSER` for the viewer: runs `tests/oidc/login.mjs` on the page it is given, signing
/// in as the user in `SL_USER`/`SL_PASSWORD`, its outcome in `SL_OUT`; or, when those are not
/// set, only writes the page to `SL_OUT` (a browser whose person never signs in).
pub fn browser_script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("browser.sh");
    let text = format!(
        "#!/bin/sh\nif [ -n \"$SL_USER\" ]; then\n  exec node {} \"$1\" \"$SL_USER\" \
         \"$SL_PASSWORD\" >\"$SL_OUT\" 2>\"$SL_OUT.log\"\nfi\nprintf '%s' \"$1\" >\"$SL_OUT\"\n",
        oidc_dir().join("login.mjs").display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `viewer --data-dir DATA session --relay .. --relay-key .. --oidc PROVIDER --json` against
/// `relay`, to add arguments and environment to before [`spawn_viewer`].
pub fn viewer_command(relay: &crate::Relay, data: &Path, provider: &str) -> Command {
    let mut cmd = Command::new(crate::bin("viewer"));
    cmd.arg("--data-dir").arg(data).args([
        "session",
        "--relay",
        &relay.addr,
        "--relay-key",
        &relay.fingerprint,
        "--oidc",
        provider,
        "--json",
    ]);
    cmd
}

/// Starts a viewer command with nothing on its standard input.
pub fn spawn_viewer(cmd: &mut Command) -> Proc {
    let mut p = Proc::spawn("viewer", cmd);
    p.close_stdin();
    p
}

/// A customer's agent joins with the code `viewer` (logged in through a provider) got: it
/// shows `user`'s name and organisation from the provider's claims, certified by the relay;
/// the viewer gets a picture, and the customer ends the session.
pub fn customer_sees(relay: &crate::Relay, viewer: &mut Proc, dir: &Path, user: &OidcUser) {
    let code = viewer.session_code();
    let mut agent = relay.agent(&dir.join("agent"), &code);
    let connected = agent.wait_event("connected", crate::SLOW);
    assert_eq!(connected["peer"]["display_name"], user.name, "{connected}");
    assert_eq!(connected["peer"]["organisation"], user.org, "{connected}");
    viewer.wait_event("frame", crate::SLOW);
    agent.write_line("e");
    agent.wait_exit(crate::SLOW);
}

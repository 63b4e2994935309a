//! The screen-cast portal's handshake (`org.freedesktop.portal.ScreenCast`) over the session
//! bus, with zbus: pure Rust, so the agent links no libdbus and still starts where there is no
//! bus.
//!
//! Each portal call returns a request object whose `Response` signal carries the answer; the
//! agent subscribes to that signal before calling, on the path the portal will use (built from
//! the connection's unique name and a token of ours), so no answer can be missed. `Start` is
//! where the desktop may ask the customer which screen to share: it takes as long as they take.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

const DESTINATION: &str = "org.freedesktop.portal.Desktop";
const PATH: &str = "/org/freedesktop/portal/desktop";
const SCREEN_CAST: &str = "org.freedesktop.portal.ScreenCast";
/// `types` bit for monitors.
const SOURCE_MONITOR: u32 = 1;
/// `cursor_mode` bits: the pointer drawn into the picture, or left out.
const CURSOR_EMBEDDED: u32 = 2;
const CURSOR_HIDDEN: u32 = 1;

type Options<'a> = HashMap<&'static str, Value<'a>>;
type Results = HashMap<String, OwnedValue>;

/// An open screen-cast session: what PipeWire streams, and the session to close at the end.
pub(super) struct Session {
    connection: Connection,
    handle: OwnedObjectPath,
    /// The PipeWire node that carries the picture.
    pub node: u32,
    /// The stream's size as the portal reports it, when it does.
    pub size: Option<(u32, u32)>,
    /// Whether the portal draws the pointer into the picture.
    pub cursor_embedded: bool,
}

/// Why the portal gave no session.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The customer cancelled the desktop's dialog.
    Cancelled,
    /// The portal failed, in words for the customer's log.
    Failed(String),
}

impl From<String> for Refusal {
    fn from(why: String) -> Self {
        Refusal::Failed(why)
    }
}

/// A portal failure, in words for the customer's log and the operator.
fn fail(what: &str, e: impl std::fmt::Display) -> String {
    format!("the screen-sharing portal failed ({what}): {e}")
}

/// Connects to the session bus and checks that the desktop offers screen casting; returns the
/// connection and the cursor modes it offers.
pub(super) fn probe() -> Result<(Connection, u32), String> {
    let connection = Connection::session().map_err(|e| fail("no D-Bus session bus", e))?;
    let modes: u32 = screen_cast(&connection)?
        .get_property("AvailableCursorModes")
        .map_err(|e| fail("this desktop offers no screen casting", e))?;
    Ok((connection, modes))
}

fn screen_cast(connection: &Connection) -> Result<Proxy<'static>, String> {
    Proxy::new(connection, DESTINATION, PATH, SCREEN_CAST).map_err(|e| fail("proxy", e))
}

/// Opens a session for one monitor and starts it: the desktop may ask the customer which one.
pub(super) fn open() -> Result<Session, Refusal> {
    let (connection, cursor_modes) = probe()?;
    let portal = screen_cast(&connection)?;
    let requests = Requests::new(&connection)?;

    let session_token = requests.token("s");
    let created = requests.call(&portal, "CreateSession", |token| {
        (options([
            ("handle_token", Value::from(token)),
            ("session_handle_token", Value::from(session_token.clone())),
        ]),)
    })?;
    let handle = session_handle(&created)?;
    let session = Session {
        connection: connection.clone(),
        handle,
        node: 0,
        size: None,
        cursor_embedded: cursor_modes & CURSOR_EMBEDDED != 0,
    };
    let cursor = if session.cursor_embedded {
        CURSOR_EMBEDDED
    } else {
        CURSOR_HIDDEN
    };
    let path = session.handle.as_ref();
    requests.call(&portal, "SelectSources", |token| {
        let mut opts = options([
            ("handle_token", Value::from(token)),
            ("types", Value::from(SOURCE_MONITOR)),
            ("multiple", Value::from(false)),
        ]);
        if cursor_modes & cursor != 0 {
            opts.insert("cursor_mode", Value::from(cursor));
        }
        (path.clone(), opts)
    })?;
    let started = requests.call(&portal, "Start", |token| {
        (
            path.clone(),
            "",
            options([("handle_token", Value::from(token))]),
        )
    })?;
    let mut session = session;
    (session.node, session.size) = first_stream(&started)?;
    Ok(session)
}

impl Session {
    /// The PipeWire remote that serves this session's streams (a socket only they can use).
    pub(super) fn pipewire_remote(&self) -> Result<OwnedFd, String> {
        let fd: zbus::zvariant::OwnedFd = screen_cast(&self.connection)?
            .call(
                "OpenPipeWireRemote",
                &(self.handle.as_ref(), Options::new()),
            )
            .map_err(|e| fail("OpenPipeWireRemote", e))?;
        Ok(fd.into())
    }
}

impl Drop for Session {
    /// Closes the session, which ends the screen cast and the desktop's sharing indicator.
    fn drop(&mut self) {
        let closed = Proxy::new(
            &self.connection,
            DESTINATION,
            self.handle.as_ref(),
            "org.freedesktop.portal.Session",
        )
        .and_then(|session| session.call_method("Close", &()));
        if let Err(e) = closed {
            tracing::debug!("closing the screen-cast session: {e}");
        }
    }
}

fn options<'a, const N: usize>(entries: [(&'static str, Value<'a>); N]) -> Options<'a> {
    entries.into_iter().collect()
}

/// Makes the portal's request tokens and waits for their answers.
struct Requests {
    connection: Connection,
    /// The connection's unique name as the portal writes it in request paths.
    sender: String,
}

impl Requests {
    fn new(connection: &Connection) -> Result<Self, String> {
        let unique = connection
            .unique_name()
            .ok_or_else(|| fail("bus", "the connection has no unique name"))?;
        Ok(Requests {
            connection: connection.clone(),
            sender: unique.trim_start_matches(':').replace('.', "_"),
        })
    }

    /// A token no other call of this process uses.
    fn token(&self, kind: &str) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("sightline_{kind}{}_{n}", std::process::id())
    }

    /// Calls `method` with the body `body` makes from a fresh handle token, and waits for the
    /// request's answer: its results, or why it was refused.
    fn call<B>(
        &self,
        portal: &Proxy<'_>,
        method: &str,
        body: impl FnOnce(String) -> B,
    ) -> Result<Results, Refusal>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let token = self.token("r");
        let path = format!("{PATH}/request/{}/{token}", self.sender);
        let request = Proxy::new(
            &self.connection,
            DESTINATION,
            path,
            "org.freedesktop.portal.Request",
        )
        .map_err(|e| fail(method, e))?;
        let mut answers = request
            .receive_signal("Response")
            .map_err(|e| fail(method, e))?;
        let _: OwnedObjectPath = portal
            .call(method, &body(token))
            .map_err(|e| fail(method, e))?;
        let answer = answers
            .next()
            .ok_or_else(|| fail(method, "the bus connection closed"))?;
        let (code, results): (u32, Results) =
            answer.body().deserialize().map_err(|e| fail(method, e))?;
        match code {
            0 => Ok(results),
            1 => Err(Refusal::Cancelled),
            _ => Err(fail(method, "the desktop refused to share the screen").into()),
        }
    }
}

/// `session_handle` from `CreateSession`'s results: a string by the specification, an object
/// path in some portals.
fn session_handle(results: &Results) -> Result<OwnedObjectPath, String> {
    let value = results
        .get("session_handle")
        .ok_or_else(|| fail("CreateSession", "no session handle"))?;
    let text: Result<&str, _> = value.downcast_ref();
    let path = match text {
        Ok(text) => ObjectPath::try_from(text.to_owned()).map_err(|e| fail("CreateSession", e))?,
        Err(_) => value
            .downcast_ref::<ObjectPath<'_>>()
            .map_err(|e| fail("CreateSession", e))?
            .into_owned(),
    };
    Ok(path.into())
}

/// The first stream of `Start`'s results: its PipeWire node and, when given, its size.
fn first_stream(results: &Results) -> Result<(u32, Option<(u32, u32)>), String> {
    let streams = results
        .get("streams")
        .ok_or_else(|| fail("Start", "no stream was started"))?;
    let streams: Vec<(u32, HashMap<String, OwnedValue>)> = streams
        .try_clone()
        .map_err(|e| fail("Start", e))?
        .try_into()
        .map_err(|e| fail("Start", e))?;
    let (node, props) = streams
        .into_iter()
        .next()
        .ok_or_else(|| fail("Start", "no stream was started"))?;
    let size = props
        .get("size")
        .and_then(|v| v.downcast_ref::<(i32, i32)>().ok())
        .and_then(|(w, h)| Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?)));
    Ok((node, size))
}

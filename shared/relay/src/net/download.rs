//! The customer's way to the agent: plain HTTP requests on a WebSocket listener (no upgrade)
//! get a one-page "how to get help" page at `/` and the preconfigured agent at `/agent`
//! (`support_agent` in relay.toml, written by `relay agent-bundle`). Served only over TLS (a
//! wss listener, or a trusted proxy that terminated it): a program fetched over plain HTTP
//! could be swapped on the way. The file is checked before it is handed out: it must be a bundle
//! signed by this relay's root key, so a stale or foreign file never is. The checked file is
//! kept in memory, once, until the file on disk changes (its size, modification time or
//! inode), so a rush of downloads costs no re-reading and no re-hashing of 30 MB each.

use crate::context::Relay;
use sightline_core::bundle;
use sightline_net::stream::BoxIo;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// Largest agent file served.
const MAX_AGENT_BYTES: u64 = 1024 * 1024 * 1024;
/// The name the browser saves the agent under.
const FILE_NAME: &str = "sightline-support";

/// What a request gets.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The page, for this help desk.
    Page(String),
    /// The agent's bytes.
    Agent(Arc<Vec<u8>>),
    /// A status line and a short text.
    Status(&'static str, String),
}

/// A response body: made for this answer, or the cached agent.
enum Body {
    Own(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Own(b) => b,
            Body::Shared(b) => b,
        }
    }
}

/// Answers one plain request for `path` and closes the connection.
pub async fn serve(relay: &Relay, mut io: BoxIo, path: &str, secure: bool) {
    let (status, kind, extra, body) = match answer(relay, path, secure).await {
        Answer::Page(html) => (
            "200 OK",
            "text/html; charset=utf-8",
            "",
            Body::Own(html.into_bytes()),
        ),
        Answer::Agent(bytes) => (
            "200 OK",
            "application/octet-stream",
            "Content-Disposition: attachment; filename=\"sightline-support\"\r\n",
            Body::Shared(bytes),
        ),
        Answer::Status(status, text) => (
            status,
            "text/plain; charset=utf-8",
            "",
            Body::Own(text.into_bytes()),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{extra}\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        body.bytes().len()
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.write_all(body.bytes()).await;
    let _ = io.shutdown().await;
}

async fn answer(relay: &Relay, path: &str, secure: bool) -> Answer {
    let path = path.split('?').next().unwrap_or_default();
    if !matches!(path, "/" | "/agent") {
        return Answer::Status("404 Not Found", "Not found.\n".into());
    }
    if !secure {
        return Answer::Status(
            "403 Forbidden",
            "The support program is only handed out over https://.\n".into(),
        );
    }
    let Some(file) = relay.config.support_agent.as_deref() else {
        return Answer::Status(
            "404 Not Found",
            "This relay has no support program to download: ask your help desk.\n".into(),
        );
    };
    let root = relay.issuing.get().authority().root().fingerprint();
    match load(file, &root).await {
        Ok((bytes, _)) if path == "/agent" => {
            tracing::info!(file = %file.display(), "support program downloaded");
            Answer::Agent(bytes)
        }
        Ok((_, help_desk)) => Answer::Page(page(&help_desk)),
        Err(why) => {
            tracing::warn!(file = %file.display(), %why, "support program not served");
            Answer::Status(
                "503 Service Unavailable",
                "The support program is not available right now: ask your help desk.\n".into(),
            )
        }
    }
}

/// The file, if it is a bundle pinned to `root`, and the help desk's name in it (read and
/// checked off the async workers).
async fn load(
    file: &Path,
    root: &sightline_core::identity::Fingerprint,
) -> Result<(Arc<Vec<u8>>, String), String> {
    let (file, root) = (file.to_path_buf(), *root);
    tokio::task::spawn_blocking(move || load_now(&file, &root))
        .await
        .map_err(|e| e.to_string())?
}

/// The file's identity on disk: a change of any of these means the file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    len: u64,
    modified_ns: i128,
    inode: (u64, u64),
}

/// The last file that passed the check, with what it was checked against.
struct Checked {
    stamp: Stamp,
    root: sightline_core::identity::Fingerprint,
    bytes: Arc<Vec<u8>>,
    help_desk: String,
}

/// One checked file per relay process (it has one `support_agent`).
static CHECKED: Mutex<Option<Checked>> = Mutex::new(None);

fn load_now(
    file: &Path,
    root: &sightline_core::identity::Fingerprint,
) -> Result<(Arc<Vec<u8>>, String), String> {
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if meta.len() > MAX_AGENT_BYTES {
        return Err("larger than 1 GiB".into());
    }
    let stamp = Stamp {
        path: file.to_path_buf(),
        len: meta.len(),
        modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        inode: (meta.dev(), meta.ino()),
    };
    if let Ok(cache) = CHECKED.lock() {
        if let Some(c) = cache
            .as_ref()
            .filter(|c| c.stamp == stamp && c.root.ct_eq(root))
        {
            return Ok((Arc::clone(&c.bytes), c.help_desk.clone()));
        }
    }
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let help_desk = match bundle::open(&bytes) {
        Ok(Some(b)) if b.pin.ct_eq(root) => b.settings.help_desk,
        Ok(Some(_)) => return Err("the bundle pins another relay's root key".into()),
        Ok(None) => return Err("not a bundled agent (relay agent-bundle writes one)".into()),
        Err(e) => return Err(e.to_string()),
    };
    let bytes = Arc::new(bytes);
    if let Ok(mut cache) = CHECKED.lock() {
        *cache = Some(Checked {
            stamp,
            root: *root,
            bytes: Arc::clone(&bytes),
            help_desk: help_desk.clone(),
        });
    }
    Ok((bytes, help_desk))
}

/// The support page: the help desk's name, the download, what to do with it.
fn page(help_desk: &str) -> String {
    let name = escape(help_desk);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Remote support for {name}</title>\
<style>body{{font-family:sans-serif;max-width:38em;margin:3em auto;padding:0 1em;line-height:1.5}}\
a.button{{display:inline-block;padding:.6em 1.2em;background:#1d3557;color:#fff;border-radius:6px;text-decoration:none}}\
code{{background:#eee;padding:0 .3em}}</style></head><body>\
<h1>Remote support for {name}</h1>\
<p>Someone at {name} is on the phone with you and gave you a <strong>session code</strong> of \
10 digits. To let them see your screen:</p>\
<ol><li><a class=\"button\" href=\"/agent\" download=\"{FILE_NAME}\">Download the support program</a></li>\
<li>Open it: double-click it in your file manager (allow it to run as a program if asked), \
or in a terminal: <code>chmod +x {FILE_NAME} &amp;&amp; ./{FILE_NAME}</code></li>\
<li>Type the session code. You are asked before your screen is shared, and again before \
anyone may use your keyboard and mouse. You can take control back or end the session at any \
time.</li></ol>\
<p>The program checks that it was made by {name} and has not been changed since; \
a changed copy refuses to start.</p></body></html>\n"
    )
}

/// HTML text escaping for the help desk's name.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_escaped_on_the_page() {
        let p = page("<script>alert(1)</script> & \"IT\"");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;IT&quot;"));
    }
}

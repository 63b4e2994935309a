//! RFC 5424 messages from audit entries, and their framing on the wire. Pure functions: no
//! clock (the entry's own time is the TIMESTAMP), no sockets.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [sightline@32473 id="…" action="…" …] MSG
//! ```
//!
//! MSGID is the action; MSG is the whole entry as one JSON object in ASCII (other characters
//! as `\u` escapes), so it needs no BOM and can be cut at any byte. 32473 is the private
//! enterprise number RFC 5612 reserves for documentation.

use super::settings::{is_header_field, Facility};
use super::source::ExportEntry;
use serde_json::Value;
use std::fmt::Write as _;

/// The SD-ID of the structured data element.
pub const SD_ID: &str = "sightline@32473";
/// Largest UDP datagram sent (RFC 5426 receivers SHOULD accept 2048 octets); MSG is cut to fit.
pub const DATAGRAM_MAX: usize = 2048;
/// Largest message sent over TCP or TLS (rsyslog's default `maxMessageSize`); MSG is cut to fit.
pub const STREAM_MAX: usize = 8192;
/// Longest SD-PARAM value; the full value is in MSG.
const PARAM_VALUE_MAX: usize = 128;
/// The structured data stops growing past this size, so the header always fits a datagram.
const SD_MAX: usize = 1024;
/// Longest MSGID.
const MSGID_MAX: usize = 32;
/// Longest SD-PARAM name.
const PARAM_NAME_MAX: usize = 32;

/// Words in an action that make it a warning (a failure or a refusal).
const WARNING_WORDS: &[&str] = &[
    "failed", "failure", "refused", "denied", "rejected", "declined", "locked", "lockout",
    "invalid",
];

/// Severity of a message (RFC 5424 section 6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 4: failures and refusals.
    Warning = 4,
    /// 5: everything else (normal but significant).
    Notice = 5,
}

/// The severity of an action: a warning when one of its words (split at `.`, `-`, `_`) names
/// a failure or refusal, else a notice.
pub fn severity(action: &str) -> Severity {
    let warning = action
        .split(['.', '-', '_'])
        .any(|w| WARNING_WORDS.iter().any(|x| w.eq_ignore_ascii_case(x)));
    if warning {
        Severity::Warning
    } else {
        Severity::Notice
    }
}

/// The fixed header fields of every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Facility.
    pub facility: Facility,
    /// HOSTNAME (PRINTUSASCII, checked by the configuration).
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// PROCID: the relay's process id.
    pub procid: u32,
}

/// One formatted message: the header with its structured data, and MSG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    head: String,
    msg: String,
}

impl Message {
    /// Formats `entry`.
    pub fn new(header: &Header, entry: &ExportEntry) -> Self {
        let pri = u16::from(header.facility.code()) * 8 + severity(&entry.action) as u16;
        let head = format!(
            "<{pri}>1 {} {} {} {} {} {}",
            timestamp(entry.at),
            field(&header.hostname, 255),
            field(&header.app_name, 48),
            header.procid,
            msgid(&entry.action),
            structured_data(entry),
        );
        Self {
            head,
            msg: ascii_json(entry),
        }
    }

    /// The message, MSG cut so that the whole is at most `max` bytes (the header is never
    /// cut; it stays well under [`DATAGRAM_MAX`]).
    pub fn bytes(&self, max: usize) -> Vec<u8> {
        let room = max.saturating_sub(self.head.len() + 1);
        // MSG is ASCII, so any cut is at a character boundary.
        let msg = &self.msg.as_bytes()[..self.msg.len().min(room)];
        let mut out = Vec::with_capacity(self.head.len() + 1 + msg.len());
        out.extend_from_slice(self.head.as_bytes());
        out.push(b' ');
        out.extend_from_slice(msg);
        out
    }

    /// The message framed by octet counting, `LEN SP MSG` (RFC 5425, RFC 6587), for TCP and
    /// TLS, appended to `out`.
    pub fn frame_into(&self, out: &mut Vec<u8>) {
        let bytes = self.bytes(STREAM_MAX);
        out.extend_from_slice(bytes.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&bytes);
    }

    /// The message as one UDP datagram (RFC 5426).
    pub fn datagram(&self) -> Vec<u8> {
        self.bytes(DATAGRAM_MAX)
    }
}

/// RFC 3339 time in UTC with second precision, or `-` when out of range.
fn timestamp(at: u64) -> String {
    i64::try_from(at)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_string())
}

/// A header field as configured, or `-` if it is not valid (never sent broken).
fn field(text: &str, max: usize) -> &str {
    if is_header_field(text, max) {
        text
    } else {
        "-"
    }
}

/// MSGID: the action, characters outside PRINTUSASCII as `_`, at most 32, `-` when empty.
fn msgid(action: &str) -> String {
    let id: String = action
        .chars()
        .take(MSGID_MAX)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if id.is_empty() {
        "-".to_string()
    } else {
        id
    }
}

/// `[sightline@32473 id="…" action="…" actor="…" subject="…" …]`.
fn structured_data(entry: &ExportEntry) -> String {
    let mut sd = format!("[{SD_ID} id=\"{}\"", entry.id);
    let fixed = [
        ("action", Some(entry.action.as_str())),
        ("actor", Some(entry.actor.as_str())),
        ("subject", entry.subject.as_deref()),
    ];
    let extra = entry.extra.iter().filter_map(|(k, v)| match v {
        Value::String(s) => Some((k.as_str(), Some(s.as_str()))),
        _ => None,
    });
    for (name, value) in fixed.into_iter().chain(extra) {
        let Some(value) = value else { continue };
        if !is_param_name(name) || sd.len() > SD_MAX {
            continue;
        }
        let _ = write!(sd, " {name}=\"{}\"", param_value(value));
    }
    sd.push(']');
    sd
}

/// SD-NAME: 1 to 32 PRINTUSASCII except `=`, space, `]` and `"`.
fn is_param_name(name: &str) -> bool {
    is_header_field(name, PARAM_NAME_MAX) && !name.contains(['=', ']', '"'])
}

/// PARAM-VALUE: `"`, `\` and `]` escaped with `\` (RFC 5424 section 6.3.3), control
/// characters as `?`, cut at 128 bytes on a character boundary.
fn param_value(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        let add = match c {
            '"' | '\\' | ']' => 2,
            c => c.len_utf8(),
        };
        if out.len() + add > PARAM_VALUE_MAX {
            break;
        }
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The entry as JSON with every non-ASCII character as a `\u` escape (valid JSON: outside
/// strings serde_json writes only ASCII).
fn ascii_json(entry: &ExportEntry) -> String {
    let json = serde_json::to_string(entry).unwrap_or_else(|_| format!("{{\"id\":{}}}", entry.id));
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn header() -> Header {
        Header {
            facility: Facility::Authpriv,
            hostname: "relay1".into(),
            app_name: "sightline-relay".into(),
            procid: 42,
        }
    }

    fn entry(action: &str) -> ExportEntry {
        ExportEntry {
            id: 7,
            at: 1_700_000_000,
            actor: "192.0.2.1".into(),
            action: action.into(),
            subject: Some("alice".into()),
            detail: Some("wrong password".into()),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn formats_a_known_message() {
        let m = Message::new(&header(), &entry("login.failed"));
        let text = String::from_utf8(m.datagram()).unwrap();
        assert_eq!(
            text,
            "<84>1 2023-11-14T22:13:20Z relay1 sightline-relay 42 login.failed \
             [sightline@32473 id=\"7\" action=\"login.failed\" actor=\"192.0.2.1\" subject=\"alice\"] \
             {\"id\":7,\"at\":1700000000,\"actor\":\"192.0.2.1\",\"action\":\"login.failed\",\
             \"subject\":\"alice\",\"detail\":\"wrong password\"}"
        );
    }

    #[test]
    fn severity_follows_the_action() {
        assert_eq!(severity("login.failed"), Severity::Warning);
        assert_eq!(severity("code.refused"), Severity::Warning);
        assert_eq!(severity("login.ok"), Severity::Notice);
        assert_eq!(severity("user.add"), Severity::Notice);
        assert_eq!(severity("recovery-code.used"), Severity::Notice);
        // authpriv (10) * 8 + notice (5)
        let m = Message::new(&header(), &entry("user.add"));
        assert!(m.datagram().starts_with(b"<85>1 "));
    }

    #[test]
    fn sd_values_are_escaped_and_msg_is_ascii_json() {
        let mut e = entry("user.set");
        e.subject = Some("a\"b\\c]d\ne".into());
        e.detail = Some("Jürgen 😀".into());
        let text = String::from_utf8(Message::new(&header(), &e).datagram()).unwrap();
        assert!(text.contains(r#"subject="a\"b\\c\]d?e""#), "{text}");
        assert!(text.is_ascii(), "{text}");
        let msg = &text[text.find("] {").unwrap() + 2..];
        let back: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(back["detail"], "Jürgen 😀");
        assert_eq!(back["subject"], "a\"b\\c]d\ne");
    }

    #[test]
    fn msgid_and_bad_header_fields_are_made_valid() {
        let long = "x".repeat(40);
        let m = Message::new(&header(), &entry(&format!("a b{long}")));
        let text = String::from_utf8(m.datagram()).unwrap();
        let msgid = text.split(' ').nth(5).unwrap();
        assert_eq!(msgid.len(), 32);
        assert!(msgid.starts_with("a_b"));
        let m = Message::new(&header(), &entry(""));
        assert_eq!(
            String::from_utf8(m.datagram()).unwrap().split(' ').nth(5),
            Some("-")
        );
        let mut h = header();
        h.hostname = "bad host".into();
        let text = String::from_utf8(Message::new(&h, &entry("x")).datagram()).unwrap();
        assert_eq!(text.split(' ').nth(2), Some("-"));
        assert_eq!(timestamp(u64::MAX), "-");
    }

    #[test]
    fn datagrams_cut_msg_not_the_header() {
        let mut e = entry("user.set");
        e.detail = Some("d".repeat(10_000));
        e.subject = Some("s".repeat(1_000));
        for i in 0..100 {
            e.extra
                .insert(format!("k{i}"), Value::from("v".repeat(200)));
        }
        let m = Message::new(&header(), &e);
        let d = m.datagram();
        assert_eq!(d.len(), DATAGRAM_MAX);
        let text = String::from_utf8(d).unwrap();
        assert!(text.contains("] {\"id\":7,"), "the header and SD are whole");
        // Each SD value is cut, the SD as a whole is bounded.
        assert!(text.contains(&format!("subject=\"{}\"", "s".repeat(128))));
        assert!(text.find("] {").unwrap() < SD_MAX + 200);
        let mut framed = Vec::new();
        m.frame_into(&mut framed);
        assert!(framed.starts_with(format!("{STREAM_MAX} <").as_bytes()));
    }

    #[test]
    fn octet_counting_counts_bytes() {
        let m = Message::new(&header(), &entry("user.add"));
        let mut framed = Vec::new();
        m.frame_into(&mut framed);
        m.frame_into(&mut framed);
        let text = String::from_utf8(framed).unwrap();
        let (len, rest) = text.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        assert_eq!(
            &rest[..len],
            String::from_utf8(m.bytes(STREAM_MAX)).unwrap()
        );
        assert!(rest[len..].starts_with(&format!("{len} <85>1 ")));
    }
}

//! The log file itself: opened for appending only (never truncated), created owner-only, and
//! its last line read back at start so the chain goes on from it. A file whose last line is
//! not a whole, well-formed entry is refused, never repaired or continued.

use sightline_core::audit_chain::{rfc3339, Head, Line};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The longest line read back (a kiosk's entries are far shorter).
pub const MAX_LINE: u64 = 1 << 20;

/// Opens (or creates, mode 0600) the log at `path` for appending and returns where its chain
/// goes on.
pub fn open(path: &Path) -> Result<(File, Head), String> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot open the kiosk's audit log {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "the kiosk's audit log {} is readable by others (mode {:o}); make it owner-only (chmod 600)",
                path.display(),
                mode & 0o777
            ));
        }
    }
    let head = tail(&mut file).map_err(|why| {
        format!(
            "the kiosk's audit log {} ends with {why}; the kiosk does not continue a log it cannot vouch for. \
             Check it with `agent audit verify {}`, then move it aside (for example `mv {0} {0}.1`, keeping \
             the old file) and start the kiosk again to begin a new log",
            path.display(),
            path.display()
        )
    })?;
    Ok((file, head))
}

/// Where the chain of the file goes on: after its last line, or from the start when empty.
fn tail(file: &mut File) -> Result<Head, String> {
    let len = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    if len == 0 {
        return Ok(Head::genesis());
    }
    let from = len.saturating_sub(MAX_LINE + 1);
    file.seek(SeekFrom::Start(from))
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    file.take(MAX_LINE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    let Some(body) = buf.strip_suffix(b"\n") else {
        return Err("a line cut short (no newline at its end)".into());
    };
    let last = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None if from == 0 => body,
        None => return Err("a line longer than any entry".into()),
    };
    let text = std::str::from_utf8(last).map_err(|_| "a line that is not UTF-8".to_string())?;
    let line = Line::parse(text).map_err(|e| format!("a line that is not an entry ({e})"))?;
    if line.at != rfc3339(line.at_unix) {
        return Err(format!(
            "entry #{} whose at does not match at_unix",
            line.id
        ));
    }
    Head::after(&line).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use sightline_core::audit_chain::Unhashed;
    use std::io::Write;

    fn entry() -> Unhashed<'static> {
        Unhashed {
            actor: "kiosk",
            action: "kiosk.started",
            subject: None,
            detail: None,
            session: None,
        }
    }

    #[test]
    fn continues_after_the_last_line_and_refuses_a_bad_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut f, head) = open(&path).unwrap();
        assert_eq!(head, Head::genesis());
        let mut head = head;
        for at in [1, 2] {
            let line = head.next(at, entry()).unwrap();
            writeln!(f, "{}", line.to_json()).unwrap();
            head.advance(&line);
        }
        let (mut f, again) = open(&path).unwrap();
        assert_eq!(again, head);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        write!(f, "{{\"id\":3,").unwrap();
        let err = open(&path).unwrap_err();
        assert!(err.contains("cut short") && err.contains("mv "), "{err}");
        writeln!(f, "junk").unwrap();
        assert!(open(&path).unwrap_err().contains("not an entry"));
    }
}

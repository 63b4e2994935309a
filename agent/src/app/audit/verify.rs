//! Reading a kiosk's log file for `agent audit verify`: one line in memory at a time, fed to
//! [`LineWalk`] under the same rules as the relay's log. A kiosk never prunes its own log, but
//! a file that holds a signed prune checkpoint is checked from the newest one, as the relay's.

use super::file::MAX_LINE;
use ed25519_dalek::VerifyingKey;
use sightline_core::audit_chain::checkpoint::PRUNE_ACTION;
use sightline_core::audit_chain::{Bad, Line, LineWalk, Summary};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Checks the log at `path`. The outer error: the file cannot be read; the inner one: the
/// first bad line.
pub fn verify_file(
    path: &Path,
    key: Option<&VerifyingKey>,
) -> std::io::Result<Result<Summary, Bad>> {
    let mut walk = match newest_prune(path)? {
        None => LineWalk::new(key, None),
        Some(prune) => match LineWalk::after_prune(key, None, &prune) {
            Ok(walk) => walk,
            Err(bad) => return Ok(Err(bad)),
        },
    };
    if let Err(bad) = each_line(path, |text, complete| walk.push(text, complete))? {
        return Ok(Err(bad));
    }
    Ok(walk.finish().map(|(summary, _)| summary))
}

/// The last line that reads as a prune checkpoint entry, if any (lines that do not read are
/// left to the walk to name).
fn newest_prune(path: &Path) -> std::io::Result<Option<Line>> {
    let mut newest = None;
    each_line(path, |text, _| {
        if let Ok(line) = Line::parse(text) {
            if line.action == PRUNE_ACTION {
                newest = Some(line);
            }
        }
        Ok(())
    })?
    .ok();
    Ok(newest)
}

/// Calls `f` with each line of `path` (without its newline) and whether it ended with one;
/// stops at the first error, its own or a line too long or not UTF-8.
fn each_line(
    path: &Path,
    mut f: impl FnMut(&str, bool) -> Result<(), Bad>,
) -> std::io::Result<Result<(), Bad>> {
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    let mut buf = Vec::new();
    let mut entry: i64 = 0;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(Ok(()));
        }
        entry = entry.saturating_add(1);
        let complete = buf.last() == Some(&b'\n');
        if !complete && n as u64 > MAX_LINE {
            return Ok(Err(Bad {
                entry,
                what: "line longer than any entry".into(),
            }));
        }
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let Ok(text) = std::str::from_utf8(body) else {
            return Ok(Err(Bad {
                entry,
                what: "line is not UTF-8".into(),
            }));
        };
        if let Err(bad) = f(text, complete) {
            return Ok(Err(bad));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use ed25519_dalek::SigningKey;
    use sightline_core::audit_chain::checkpoint::Checkpoint;
    use sightline_core::audit_chain::{parse_hash, Head, Unhashed};

    fn entry<'a>(action: &'a str, detail: Option<&'a str>) -> Unhashed<'a> {
        Unhashed {
            actor: "kiosk",
            action,
            subject: None,
            detail,
            session: None,
        }
    }

    /// Entries 1-3, a checkpoint (4), a prune checkpoint over it signed by `sign` (5), one
    /// more entry (6); the lines from #5 on, as a pruned log holds them.
    fn pruned(key: &SigningKey, sign: fn(&SigningKey, i64, &[u8; 32]) -> Checkpoint) -> String {
        let mut head = Head::genesis();
        let mut lines = Vec::new();
        for i in 0..3 {
            let line = head.next(100 + i, entry("kiosk.started", None)).unwrap();
            head.advance(&line);
            lines.push(line);
        }
        let cp = head.checkpoint(key, 200, "kiosk").unwrap();
        head.advance(&cp);
        let detail = sign(
            key,
            cp.id,
            &parse_hash(cp.hash.as_deref().unwrap()).unwrap(),
        )
        .to_detail();
        let prune = head.next(300, entry(PRUNE_ACTION, Some(&detail))).unwrap();
        head.advance(&prune);
        let more = head.next(301, entry("kiosk.stopped", None)).unwrap();
        [prune, more].iter().map(|l| l.to_json() + "\n").collect()
    }

    #[test]
    fn a_file_holding_a_prune_checkpoint_is_checked_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let key = SigningKey::from_bytes(&[3; 32]);
        let public = key.verifying_key();
        std::fs::write(
            &path,
            pruned(&key, |k, e, h| Checkpoint::sign_prune(k, e, h, 4, 300)),
        )
        .unwrap();
        let summary = verify_file(&path, Some(&public)).unwrap().unwrap();
        assert_eq!((summary.entries, summary.pruned), (2, Some((5, 300))));
        // An ordinary checkpoint's signature cannot stand in for a prune checkpoint's.
        std::fs::write(
            &path,
            pruned(&key, |k, e, h| Checkpoint::sign(k, e, h, 4, 300)),
        )
        .unwrap();
        assert_eq!(
            verify_file(&path, Some(&public))
                .unwrap()
                .unwrap_err()
                .entry,
            5
        );
    }
}

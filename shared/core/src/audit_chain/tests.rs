//! A log of lines written through [`Head`] and tampered with in every way a verifier must
//! notice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use ed25519_dalek::SigningKey;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn entry(subject: &str) -> Unhashed<'_> {
    Unhashed {
        actor: "kiosk",
        action: "kiosk.session.connected",
        subject: Some(subject),
        detail: Some("{\"address\":\"127.0.0.1:1\"}"),
        session: Some("00ff"),
    }
}

/// Ten entries with a checkpoint after every four: ids 1-4, checkpoint 5, 6-9, checkpoint 10,
/// 11-12. Each line as written, with its newline.
fn log() -> Vec<String> {
    let mut head = Head::genesis();
    let mut lines = Vec::new();
    for i in 0..10u64 {
        let subject = format!("u{i}");
        let line = head.next(1_700_000_000 + i, entry(&subject)).unwrap();
        head.advance(&line);
        lines.push(line.to_json() + "\n");
        if head.count() % 5 == 4 {
            let cp = head.checkpoint(&key(), 1_700_000_100 + i, "kiosk").unwrap();
            head.advance(&cp);
            lines.push(cp.to_json() + "\n");
        }
    }
    lines
}

fn check_with(lines: &[String], key: Option<&ed25519_dalek::VerifyingKey>) -> Result<Summary, Bad> {
    let mut walk = LineWalk::new(key, None);
    for l in lines {
        match l.strip_suffix('\n') {
            Some(text) => walk.push(text, true)?,
            None => walk.push(l, false)?,
        }
    }
    walk.finish().map(|(s, _)| s)
}

fn check(lines: &[String]) -> Result<Summary, Bad> {
    check_with(lines, Some(&key().verifying_key()))
}

fn edit(lines: &mut [String], i: usize, from: &str, to: &str) {
    assert!(lines[i].contains(from), "{}", lines[i]);
    lines[i] = lines[i].replacen(from, to, 1);
}

#[test]
fn an_untouched_log_passes_and_continues() {
    let lines = log();
    let s = check(&lines).unwrap();
    assert_eq!(s.entries, 12);
    assert_eq!(s.last_checkpoint.map(|c| c.0), Some(10));
    // Continuing from the last line only, as a restarted writer does.
    let last = Line::parse(lines[11].trim_end()).unwrap();
    let mut head = Head::after(&last).unwrap();
    let more = head.next(1_800_000_000, entry("again")).unwrap();
    head.advance(&more);
    let cp = head.checkpoint(&key(), 1_800_000_000, "kiosk").unwrap();
    let mut longer = lines.clone();
    longer.push(more.to_json() + "\n");
    longer.push(cp.to_json() + "\n");
    assert_eq!(check(&longer).unwrap().entries, 14);
}

#[test]
fn a_changed_line_is_named() {
    let mut lines = log();
    edit(&mut lines, 6, "u5", "u6");
    assert_eq!(check(&lines).unwrap_err().entry, 7);
    let mut lines = log();
    edit(
        &mut lines,
        2,
        "2023-11-14T22:13:22Z",
        "2023-11-14T22:13:29Z",
    );
    let b = check(&lines).unwrap_err();
    assert_eq!((b.entry, b.what.as_str()), (3, "at does not match at_unix"));
}

#[test]
fn a_deleted_line_is_named_as_missing() {
    let mut lines = log();
    lines.remove(2);
    let b = check(&lines).unwrap_err();
    assert_eq!(b.entry, 3, "{b}");
    assert!(b.what.contains("skips from #2 to #4"), "{b}");
}

#[test]
fn inserted_and_swapped_lines_are_named() {
    let mut lines = log();
    let copy = lines[3].clone();
    lines.insert(3, copy);
    assert_eq!(check(&lines).unwrap_err().entry, 4);
    let mut lines = log();
    lines.swap(1, 2);
    assert_eq!(check(&lines).unwrap_err().entry, 2);
}

#[test]
fn a_cut_or_junk_line_is_named() {
    let mut lines = log();
    let last = lines.pop().unwrap();
    lines.push(last[..last.len() / 2].to_string());
    let b = check(&lines).unwrap_err();
    assert_eq!(b.entry, 12, "{b}");
    assert!(b.what.contains("cut short"), "{b}");
    let mut lines = log();
    let last = lines.pop().unwrap();
    lines.push(last.trim_end().to_string());
    assert_eq!(check(&lines).unwrap_err().entry, 12);
    for junk in ["", "{}", "[1]", "\u{0}", "{\"id\":1}"] {
        let mut lines = log();
        lines[4] = format!("{junk}\n");
        let b = check(&lines).unwrap_err();
        assert_eq!(b.entry, 5, "{junk}: {b}");
    }
}

#[test]
fn a_rewritten_chain_fails_at_the_next_checkpoint_and_keys_matter() {
    // Entry 2 changed and every later entry re-hashed, as someone without the key can.
    let original: Vec<Line> = log()
        .iter()
        .map(|l| Line::parse(l.trim_end()).unwrap())
        .collect();
    let mut head = Head::genesis();
    let mut forged = Vec::new();
    for (i, l) in original.iter().enumerate() {
        let subject = if i == 1 {
            Some("mallory")
        } else {
            l.subject.as_deref()
        };
        let f = Unhashed {
            actor: &l.actor,
            action: &l.action,
            subject,
            detail: l.detail.as_deref(),
            session: l.session.as_deref(),
        };
        let line = head.next(l.at_unix, f).unwrap();
        head.advance(&line);
        forged.push(line.to_json() + "\n");
    }
    let b = check(&forged).unwrap_err();
    assert_eq!(b.entry, 5, "{b}");
    assert!(b.what.contains("changed after it was signed"), "{b}");
    let other = SigningKey::from_bytes(&[6; 32]).verifying_key();
    let b = check_with(&log(), Some(&other)).unwrap_err();
    assert_eq!(b.entry, 5);
    assert!(b.what.contains("another key"), "{b}");
    assert_eq!(check_with(&log(), None).unwrap_err().entry, 5);
}

#[test]
fn heads_refuse_lines_they_cannot_continue() {
    let mut last = Line::parse(log()[11].trim_end()).unwrap();
    last.hash = Some("00".into());
    assert_eq!(Head::after(&last), Err(HeadError::BadHash(12)));
    last.id = 0;
    assert_eq!(Head::after(&last), Err(HeadError::BadId(0)));
}

#[test]
fn lines_have_stable_fields() {
    let line = Head::genesis().next(1_700_000_000, entry("alice")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "id": 1, "at": "2023-11-14T22:13:20Z", "at_unix": 1_700_000_000u64,
            "actor": "kiosk", "action": "kiosk.session.connected", "subject": "alice",
            "detail": "{\"address\":\"127.0.0.1:1\"}", "session": "00ff", "hash": line.hash,
        })
    );
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    assert!(Head::genesis().next(u64::MAX, entry("x")).is_none());
}

mod prune;

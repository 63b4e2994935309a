//! A log of lines pruned behind a signed prune checkpoint, as the relay's retention does:
//! the walk starts from it, counts continue since genesis, and every way around it fails.

use super::{entry, key, log};
use crate::audit_chain::checkpoint::{Checkpoint, PRUNE_ACTION};
use crate::audit_chain::{parse_hash, Anchor, Bad, Head, Line, LineWalk, Summary, Unhashed};
use ed25519_dalek::SigningKey;

/// When the prune checkpoint is signed.
const PRUNED_AT: u64 = 1_700_000_500;

fn parse(line: &str) -> Line {
    Line::parse(line.trim_end()).unwrap()
}

/// [`log`] (ids 1-12, checkpoints 5 and 10), then a prune checkpoint over #5 signed by
/// `signer` with `cp` (13), one more entry (14) and a checkpoint (15); nothing deleted yet.
fn pruned_with(signer: &SigningKey, cp: impl Fn(&[u8; 32]) -> Checkpoint) -> Vec<String> {
    let mut lines = log();
    let five = parse(&lines[4]);
    let hash = parse_hash(five.hash.as_deref().unwrap()).unwrap();
    let detail = cp(&hash).to_detail();
    let mut head = Head::after(&parse(&lines[11])).unwrap();
    let prune = Unhashed {
        actor: "relay",
        action: PRUNE_ACTION,
        subject: None,
        detail: Some(&detail),
        session: None,
    };
    let prune = head.next(PRUNED_AT, prune).unwrap();
    head.advance(&prune);
    let more = head.next(PRUNED_AT + 1, entry("after")).unwrap();
    head.advance(&more);
    let cp = head.checkpoint(signer, PRUNED_AT + 2, "relay").unwrap();
    for l in [prune, more, cp] {
        lines.push(l.to_json() + "\n");
    }
    lines
}

fn pruned() -> Vec<String> {
    pruned_with(&key(), |h| {
        Checkpoint::sign_prune(&key(), 5, h, 5, PRUNED_AT)
    })
}

fn walk_from_prune(lines: &[String], anchor: Option<Anchor>) -> Result<Summary, Bad> {
    let prune = lines
        .iter()
        .map(|l| parse(l))
        .rfind(|l| l.action == PRUNE_ACTION)
        .unwrap();
    let mut walk = LineWalk::after_prune(Some(&key().verifying_key()), anchor, &prune)?;
    for l in lines {
        walk.push(l.trim_end(), true)?;
    }
    walk.finish().map(|(s, _)| s)
}

#[test]
fn a_pruned_log_verifies_from_its_prune_checkpoint() {
    let lines = pruned();
    // From genesis, the prune checkpoint is checked in passing.
    assert_eq!(super::check(&lines).unwrap().entries, 15);
    // Before and after the pruned lines are deleted.
    for kept in [&lines[..], &lines[5..]] {
        let s = walk_from_prune(kept, None).unwrap();
        assert_eq!(s.entries, 10);
        assert_eq!(s.pruned, Some((6, PRUNED_AT)));
        assert_eq!(s.last_checkpoint.map(|c| c.0), Some(15));
    }
}

#[test]
fn a_deleted_kept_line_or_a_count_without_the_pruned_ones_is_named() {
    let mut lines = pruned();
    lines.drain(..5);
    let mut missing = lines.clone();
    missing.remove(0);
    let b = walk_from_prune(&missing, None).unwrap_err();
    assert_eq!(b.entry, 6, "{b}");
    assert!(
        b.what
            .contains("prune checkpoint keeps every entry from #6"),
        "{b}"
    );
    // A checkpoint counting only the kept entries (9 up to #14) does not match the log.
    let mut head = Head::after(&parse(&lines[8])).unwrap();
    let short = Checkpoint::sign(&key(), 14, &head_hash(&lines[8]), 9, PRUNED_AT);
    let detail = short.to_detail();
    let cp = head
        .next(
            PRUNED_AT,
            Unhashed {
                actor: "relay",
                action: crate::audit_chain::checkpoint::ACTION,
                subject: None,
                detail: Some(&detail),
                session: None,
            },
        )
        .unwrap();
    head.advance(&cp);
    lines[9] = cp.to_json() + "\n";
    assert_eq!(walk_from_prune(&lines, None).unwrap_err().entry, 15);
}

fn head_hash(line: &str) -> [u8; 32] {
    parse_hash(parse(line).hash.as_deref().unwrap()).unwrap()
}

#[test]
fn forged_prune_checkpoints_are_named() {
    let forgeries: [fn(&[u8; 32]) -> Checkpoint; 3] = [
        // An ordinary checkpoint's signature under the prune action.
        |h| Checkpoint::sign(&key(), 5, h, 5, PRUNED_AT),
        // Another key.
        |h| Checkpoint::sign_prune(&SigningKey::from_bytes(&[6; 32]), 5, h, 5, PRUNED_AT),
        // Covering itself and what follows.
        |h| Checkpoint::sign_prune(&key(), 13, h, 13, PRUNED_AT),
    ];
    for forged in forgeries {
        let lines = pruned_with(&key(), forged);
        assert_eq!(walk_from_prune(&lines, None).unwrap_err().entry, 13);
        assert_eq!(super::check(&lines).unwrap_err().entry, 13);
    }
    // No key: the prune checkpoint cannot be checked, so there is no start.
    let prune = parse(&pruned()[12]);
    let b = LineWalk::after_prune(None, None, &prune).unwrap_err();
    assert_eq!(b.entry, 13, "{b}");
}

#[test]
fn anchors_in_the_pruned_part_are_accepted_only_at_the_signed_hash() {
    let lines = pruned();
    let anchor = |i: usize| Anchor::parse(lines[i].trim_end()).unwrap();
    let kept = &lines[5..];
    assert!(walk_from_prune(kept, Some(anchor(2))).is_ok());
    assert!(walk_from_prune(kept, Some(anchor(4))).is_ok());
    assert!(walk_from_prune(kept, Some(anchor(12))).is_ok());
    let wrong = Anchor {
        hash: [9; 32],
        ..anchor(4)
    };
    assert_eq!(walk_from_prune(kept, Some(wrong)).unwrap_err().entry, 5);
}

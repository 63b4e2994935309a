//! Fixtures made once with Debian's minisign 0.11 (tests/data/release: a key pair whose secret
//! half was deleted, two artefacts, their SHA256SUMS and its signature), and tamper cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const TEST_PUB: &str = include_str!("../../tests/data/release/test.pub");
const SUMS: &[u8] = include_bytes!("../../tests/data/release/SHA256SUMS");
const MINISIG: &str = include_str!("../../tests/data/release/SHA256SUMS.minisig");
const AGENT: &[u8] = include_bytes!("../../tests/data/release/agent.deb");
const VIEWER: &[u8] = include_bytes!("../../tests/data/release/viewer.tar.gz");
const TEST_KEY_ID: &str = "297ED9F43C452D61";

fn test_key() -> ReleaseKey {
    ReleaseKey::parse(TEST_PUB).unwrap()
}

#[test]
fn the_pinned_project_key_parses() {
    let key = ReleaseKey::project().unwrap();
    assert!(key.is_pinned());
    // The ID minisign printed in sightline.pub's comment.
    let comment = PROJECT_KEY_TEXT.lines().next().unwrap();
    assert!(comment.ends_with(&key.id().to_string()), "{comment}");
    assert!(key.to_string().starts_with("the Sightline release key "));
}

#[test]
fn a_key_parses_from_the_pub_file_or_its_base64_line() {
    let from_file = test_key();
    assert_eq!(from_file.id().to_string(), TEST_KEY_ID);
    assert!(!from_file.is_pinned());
    let line = TEST_PUB.lines().nth(1).unwrap();
    let from_line = ReleaseKey::parse(&format!("  {line}\n")).unwrap();
    assert_eq!(from_line.id(), from_file.id());
}

#[test]
fn key_ids_print_as_minisign_prints_them() {
    assert_eq!(
        KeyId([0x99, 0x0A, 0xFD, 0x3D, 0x1F, 0xE5, 0xBF, 0x00]).to_string(),
        "BFE51F3DFD0A99"
    );
    assert_eq!(
        KeyId([0xA2, 0xCE, 0xDD, 0x6B, 0x0A, 0x06, 0xB9, 0x9B]).to_string(),
        "9BB9060A6BDDCEA2"
    );
}

#[test]
fn garbage_keys_are_refused() {
    for text in [
        "",
        "RWRh",
        "not base64 at all!",
        "untrusted comment: x\nRWRh\nextra",
        // A signature line is not a key.
        MINISIG.lines().nth(1).unwrap(),
        "comment without the prefix\nRWRhLUU89Nl+Kf0HG1xSlK9awxL6xRIuSavGGT4NJn+vlEfwnvq516uA",
    ] {
        assert!(
            matches!(ReleaseKey::parse(text), Err(ReleaseError::BadKey(_))),
            "{text:?}"
        );
    }
}

#[test]
fn both_artefacts_verify() {
    let sums = test_key().verify_sums(SUMS, MINISIG).unwrap();
    assert_eq!(
        sums.names().collect::<Vec<_>>(),
        ["agent.deb", "viewer.tar.gz"]
    );
    for (name, bytes) in [("agent.deb", AGENT), ("viewer.tar.gz", VIEWER)] {
        let v = sums.check(name, Digest::of(bytes)).unwrap();
        assert_eq!(v.signer.to_string(), TEST_KEY_ID);
        assert_eq!(v.sha256, Digest::of(bytes));
        assert!(v.trusted_comment.contains("file:SHA256SUMS"));
    }
}

#[test]
fn streamed_and_whole_hashes_agree_with_sha256sum() {
    let mut s = Sha256Stream::default();
    for piece in VIEWER.chunks(7) {
        s.update(piece);
    }
    let digest = s.finish();
    assert_eq!(digest, Digest::of(VIEWER));
    let line = String::from_utf8_lossy(SUMS)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(line, format!("{digest}  viewer.tar.gz"));
}

#[test]
fn a_changed_artefact_is_refused() {
    let sums = test_key().verify_sums(SUMS, MINISIG).unwrap();
    let mut changed = AGENT.to_vec();
    changed[0] ^= 1;
    let err = sums.check("agent.deb", Digest::of(&changed)).unwrap_err();
    assert!(matches!(err, ReleaseError::Changed { .. }));
    assert!(err
        .to_string()
        .starts_with("agent.deb was changed after it was signed"));
}

#[test]
fn an_unlisted_name_is_refused() {
    let sums = test_key().verify_sums(SUMS, MINISIG).unwrap();
    let err = sums.check("relay.tar.gz", Digest::of(AGENT)).unwrap_err();
    assert_eq!(err, ReleaseError::NotListed("relay.tar.gz".into()));
}

#[test]
fn every_changed_byte_of_the_sums_breaks_the_signature() {
    let key = test_key();
    for i in 0..SUMS.len() {
        let mut sums = SUMS.to_vec();
        sums[i] ^= 0x01;
        let err = key.verify_sums(&sums, MINISIG).unwrap_err();
        assert!(matches!(err, ReleaseError::BadSignature { .. }), "byte {i}");
    }
    let mut longer = SUMS.to_vec();
    longer.extend_from_slice(
        b"0000000000000000000000000000000000000000000000000000000000000000  evil\n",
    );
    assert!(key.verify_sums(&longer, MINISIG).is_err());
}

#[test]
fn a_changed_signature_or_trusted_comment_is_refused() {
    let key = test_key();
    let lines: Vec<&str> = MINISIG.lines().collect();
    // The global signature covers the trusted comment.
    let comment = lines[2].replace("test fixture", "test fixturE");
    let forged = [lines[0], lines[1], &comment, lines[3]].join("\n");
    let err = key.verify_sums(SUMS, &forged).unwrap_err();
    assert!(matches!(err, ReleaseError::BadSignature { .. }), "{err}");
    // A changed byte of the signature itself (past the algorithm and key ID).
    let mut sig =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, lines[1]).unwrap();
    sig[40] ^= 1;
    let line = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sig);
    let forged = [lines[0], &line, lines[2], lines[3]].join("\n");
    assert!(matches!(
        key.verify_sums(SUMS, &forged),
        Err(ReleaseError::BadSignature { .. })
    ));
    assert!(matches!(
        key.verify_sums(SUMS, "untrusted comment: x\n"),
        Err(ReleaseError::BadSignatureFile(_))
    ));
}

#[test]
fn another_key_is_refused_naming_both_keys() {
    let project = ReleaseKey::project().unwrap();
    let err = project.verify_sums(SUMS, MINISIG).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("SHA256SUMS is not signed by the Sightline release key"),
        "{text}"
    );
    assert!(text.contains(TEST_KEY_ID), "{text}");
}

#[test]
fn a_legacy_signature_is_refused() {
    let lines: Vec<&str> = MINISIG.lines().collect();
    let mut sig =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, lines[1]).unwrap();
    sig[1] = b'd';
    let line = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sig);
    let legacy = [lines[0], &line, lines[2], lines[3]].join("\n");
    assert_eq!(
        test_key().verify_sums(SUMS, &legacy).unwrap_err(),
        ReleaseError::LegacySignature
    );
}

#[test]
fn sums_lines_parse_strictly() {
    let id = test_key().id();
    let hex = "ab".repeat(32);
    let good = format!("{hex}  a.bin\n{hex} *b.bin\n\n");
    let sums = SignedSums::parse(good.as_bytes(), id, "").unwrap();
    assert_eq!(sums.names().collect::<Vec<_>>(), ["a.bin", "b.bin"]);
    for bad in [
        format!("{hex} a.bin"),
        format!("{hex}  "),
        format!("{}  a.bin", &hex[1..]),
        format!("\\{hex}  a\\nb"),
        format!("{hex}  a.bin\r"),
        format!("SHA256 (a.bin) = {hex}"),
    ] {
        assert_eq!(
            SignedSums::parse(bad.as_bytes(), id, "").unwrap_err(),
            ReleaseError::BadSumsLine(1),
            "{bad:?}"
        );
    }
    let twice = format!("{hex}  a.bin\n{hex}  a.bin\n");
    assert_eq!(
        SignedSums::parse(twice.as_bytes(), id, "").unwrap_err(),
        ReleaseError::DuplicateName("a.bin".into())
    );
}

//! Integration, signed release artefacts: `assets/release/sign.sh` without a signing key signs
//! a directory of two files with a throw-away key; Debian's minisign accepts the signature and
//! refuses a SHA256SUMS with one byte changed; `viewer verify-update` and `agent --verify`
//! accept each file with `--public-key throwaway.pub`, and refuse it after one byte of it
//! changed, when it is not listed, when SHA256SUMS changed, and without `--public-key` (the
//! Sightline release key pinned in the programs did not sign it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use sightline_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [(&str, &[u8]); 2] = [
    (
        "viewer-x86_64-linux.tar.gz",
        b"pretend this is the viewer\n",
    ),
    ("agent_0.1.0_amd64.deb", b"pretend this is the agent\n"),
];

/// `viewer verify-update FILE ARGS` or `agent --verify FILE ARGS`.
fn verify_command(program: &str, file: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin(program));
    match program {
        "viewer" => cmd.arg("verify-update").arg(file),
        _ => cmd.arg("--verify").arg(file),
    };
    cmd.args(args);
    cmd
}

/// Runs the check; (exit code, stdout, stderr).
fn check(program: &str, file: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let (status, out, err) = run(&mut verify_command(program, file, args), None);
    (status.code(), out, err)
}

/// A dist directory with the two files, signed by sign.sh with a throw-away key.
fn signed_dist() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    for (name, bytes) in FILES {
        std::fs::write(dist.join(name), bytes).unwrap();
    }
    let (status, out, err) = run(
        Command::new("bash")
            .arg(repo_root().join("assets/release/sign.sh"))
            .arg(&dist)
            .env_remove("SIGHTLINE_SIGNING_KEY"),
        None,
    );
    assert!(status.success(), "sign.sh failed: {out}{err}");
    assert!(
        err.contains("THROW-AWAY key"),
        "no throw-away warning: {err}"
    );
    (dir, dist)
}

/// `minisign -V -p KEY -m SUMS` (the signature beside SUMS): whether it verified.
fn minisign_accepts(key: &Path, sums: &Path) -> bool {
    let (status, out, err) = run(
        Command::new("minisign")
            .arg("-V")
            .arg("-p")
            .arg(key)
            .arg("-m")
            .arg(sums),
        None,
    );
    println!("minisign -V {}: {out}{err}", sums.display());
    status.success()
}

/// The key ID in throwaway.pub's comment line (`... minisign public key 9BB9060A6BDDCEA2`).
fn key_id(public_key: &Path) -> String {
    let text = std::fs::read_to_string(public_key).unwrap();
    let first = text.lines().next().unwrap();
    first.rsplit(' ').next().unwrap().to_string()
}

/// Writes a copy of `from` with byte `at` changed to `to`.
fn copy_with_byte_changed(from: &Path, to: &Path, at: usize) {
    let mut bytes = std::fs::read(from).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(to, bytes).unwrap();
}

#[test]
fn sign_sh_writes_sums_that_minisign_and_sha256sum_accept() {
    let (_dir, dist) = signed_dist();
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let names: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    assert_eq!(
        names,
        ["agent_0.1.0_amd64.deb", "viewer-x86_64-linux.tar.gz"]
    );
    let public = dist.join("throwaway.pub");
    assert!(minisign_accepts(&public, &dist.join("SHA256SUMS")));
    let (status, out, err) = run(
        Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(&dist),
        None,
    );
    assert!(status.success(), "{out}{err}");

    // One byte of SHA256SUMS changed, with the same signature beside it.
    let tampered = dist.parent().unwrap().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    copy_with_byte_changed(&dist.join("SHA256SUMS"), &tampered.join("SHA256SUMS"), 10);
    std::fs::copy(
        dist.join("SHA256SUMS.minisig"),
        tampered.join("SHA256SUMS.minisig"),
    )
    .unwrap();
    assert!(!minisign_accepts(&public, &tampered.join("SHA256SUMS")));
}

#[test]
fn both_programs_accept_the_signed_files_with_the_throwaway_key() {
    let (_dir, dist) = signed_dist();
    let public = dist.join("throwaway.pub");
    let id = key_id(&public);
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let key_arg = ["--public-key", public.to_str().unwrap()];
    for program in ["viewer", "agent"] {
        for (name, _) in FILES {
            let hex = sums.lines().find(|l| l.ends_with(name)).unwrap()[..64].to_string();
            let (code, out, err) = check(program, &dist.join(name), &key_arg);
            assert_eq!(code, Some(0), "{program} {name}: {out}{err}");
            assert_eq!(
                out.trim(),
                format!("verified: {name} (sha256 {hex}) signed by {id}"),
                "{program}"
            );
            assert!(err.contains("not the Sightline release key"), "{err}");

            let json_args = [key_arg[0], key_arg[1], "--json"];
            let (code, out, err) = check(program, &dist.join(name), &json_args);
            assert_eq!(code, Some(0), "{program} --json: {out}{err}");
            let event: Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(event["event"], "verified");
            assert_eq!(event["sha256"], hex.as_str());
            assert_eq!(event["signed_by"], id.as_str());
            assert_eq!(event["pinned_key"], false);
        }
    }
}

#[test]
fn both_programs_refuse_a_changed_file_unlisted_file_or_changed_sums() {
    let (_dir, dist) = signed_dist();
    let public = dist.join("throwaway.pub");
    let key_arg = ["--public-key", public.to_str().unwrap()];
    let (name, _) = FILES[0];
    let file = dist.join(name);
    let original = std::fs::read(&file).unwrap();
    copy_with_byte_changed(&file, &file, 3);
    // Not signed: added after sign.sh ran.
    std::fs::write(dist.join("extra.bin"), b"not in the release").unwrap();
    // SHA256SUMS with one byte of the agent's line changed, signature copied beside it.
    let tampered = dist.parent().unwrap().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    copy_with_byte_changed(&dist.join("SHA256SUMS"), &tampered.join("SHA256SUMS"), 5);
    std::fs::copy(
        dist.join("SHA256SUMS.minisig"),
        tampered.join("SHA256SUMS.minisig"),
    )
    .unwrap();
    let tampered_sums = tampered.join("SHA256SUMS");
    let (agent_name, _) = FILES[1];

    for program in ["viewer", "agent"] {
        let (code, out, err) = check(program, &file, &key_arg);
        assert_eq!(code, Some(1), "{program}: {out}{err}");
        assert!(
            err.contains(&format!("{name} was changed after it was signed")),
            "{program}: {err}"
        );
        assert!(!out.contains("verified"), "{out}");

        let (code, _, err) = check(program, &dist.join("extra.bin"), &key_arg);
        assert_eq!(code, Some(1));
        assert!(
            err.contains("extra.bin is not listed in SHA256SUMS"),
            "{err}"
        );

        let args = [
            key_arg[0],
            key_arg[1],
            "--sums",
            tampered_sums.to_str().unwrap(),
        ];
        let (code, _, err) = check(program, &dist.join(agent_name), &args);
        assert_eq!(code, Some(1));
        assert!(
            err.contains("SHA256SUMS is not signed by the given public key"),
            "{err}"
        );

        let (code, out, err) = check(program, &file, &[key_arg[0], key_arg[1], "--json"]);
        assert_eq!(code, Some(1));
        let event: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(event["event"], "error", "{out}{err}");
    }
    // Back to the signed bytes: accepted again (the refusal was about that byte).
    std::fs::write(&file, original).unwrap();
    let (code, out, err) = check("agent", &file, &key_arg);
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn the_pinned_release_key_refuses_throwaway_signatures() {
    let (_dir, dist) = signed_dist();
    let throwaway_id = key_id(&dist.join("throwaway.pub"));
    let project_id = key_id(&repo_root().join("sightline.pub"));
    for program in ["viewer", "agent"] {
        for (name, _) in FILES {
            let (code, out, err) = check(program, &dist.join(name), &[]);
            assert_eq!(code, Some(1), "{program} {name}: {out}{err}");
            assert!(
                err.contains(&format!(
                    "SHA256SUMS is not signed by the Sightline release key {project_id}: \
                     its signature is from key {throwaway_id}"
                )),
                "{program}: {err}"
            );
        }
        // An unreadable SHA256SUMS is named.
        let elsewhere = dist.parent().unwrap().join("lonely.bin");
        std::fs::write(&elsewhere, b"x").unwrap();
        let (code, _, err) = check(program, &elsewhere, &[]);
        assert_eq!(code, Some(1));
        assert!(err.contains("cannot read SHA256SUMS"), "{err}");
    }
}

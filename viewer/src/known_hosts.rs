//! The LAN-only agents this viewer knows (`known-hosts` in its data directory): for each
//! address it connected to directly, the fingerprint of the agent's key (SHA-256 of its
//! SubjectPublicKeyInfo DER, as `agent fingerprint` prints it), and the decision what to do
//! with the key an agent presents ([`decide`]).
//!
//! The file is text, one `ADDRESS FINGERPRINT` per line (`192.168.1.20:7615 3f5e…c2`, IPv6 as
//! `[fd00::20]:7615`); blank lines and `#` comments are kept. It is read and written like the
//! stored certificate ([`crate::certstore`]): owner-only (0600), written atomically; a file
//! that group or others may access, that is not a regular file or that does not parse is
//! refused with an error naming the file (and the line), and never rewritten. Only a key the
//! operator accepted (`--accept-new-agent-key`, `--agent-key`, the window's "Accept and
//! remember") is ever written, and a changed key is never replaced silently.

use crate::certstore::{self, StoreError};
use crate::direct::DirectAddress;
use sightline_core::identity::Fingerprint;
use sightline_net::keystore;
pub use sightline_net::known_hosts::{address_key, KnownHosts};
use std::fmt;
use std::path::{Path, PathBuf};

/// The known-hosts file, in the viewer's data directory.
pub const FILE: &str = "known-hosts";

/// The file's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Reads the known hosts in `dir`: empty when there is no file; an error for a file that
/// group or others may access, that is not a regular file, or that does not parse.
pub fn load(dir: &Path) -> Result<KnownHosts, StoreError> {
    let path = path(dir);
    let Some(bytes) = certstore::read_private(&path)? else {
        return Ok(KnownHosts::default());
    };
    let bad = |reason: String| StoreError::BadContents {
        path: path.clone(),
        reason: format!("{reason}; fix or remove the file (it is never rewritten while damaged)"),
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    KnownHosts::parse(&text).map_err(bad)
}

/// Stores `fingerprint` for `address` in `dir`'s known hosts (created with mode 0600 when
/// missing): read again first, so that the rest of the file stays as it is now; refused, and
/// nothing written, when the file is loose or damaged.
pub fn remember(
    dir: &Path,
    address: &DirectAddress,
    fingerprint: Fingerprint,
) -> Result<(), StoreError> {
    let mut hosts = load(dir)?;
    hosts.set(address, fingerprint);
    keystore::create_private_dir(dir)?;
    certstore::write_atomically(&path(dir), hosts.to_text().as_bytes())
}

/// What the operator said about an agent key (flags, or the window's dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentKeyPolicy {
    /// Only the key stored for the address; a first connection asks (the window) or is
    /// refused (`viewer session`).
    #[default]
    KnownOnly,
    /// `--accept-new-agent-key`: trust on first use, explicitly. A first connection stores
    /// the key; a changed key is still refused.
    AcceptNew,
    /// `--agent-key FP`: exactly this key, whatever is stored; it replaces the stored entry.
    Expect(Fingerprint),
}

/// What to do with the key an agent presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is the stored key (and the expected one, if any): go on.
    Known,
    /// Accepted: store it, replacing `replaces` (a different stored key that `--agent-key`
    /// overrides) when there is one.
    Remember {
        /// The stored key it replaces.
        replaces: Option<Fingerprint>,
    },
    /// First connection to the address and no flag: ask the operator, or refuse.
    Unknown,
    /// The address has another key stored: refused.
    Changed {
        /// The stored key.
        stored: Fingerprint,
    },
    /// `--agent-key` named another key: refused.
    Mismatch {
        /// The key `--agent-key` named.
        expected: Fingerprint,
    },
}

/// Decides about `presented`, the agent's key, given the key `stored` for its address and
/// the operator's `policy`.
pub fn decide(
    stored: Option<&Fingerprint>,
    presented: &Fingerprint,
    policy: AgentKeyPolicy,
) -> Decision {
    match (policy, stored) {
        (AgentKeyPolicy::Expect(expected), _) if !expected.ct_eq(presented) => {
            Decision::Mismatch { expected }
        }
        (_, Some(s)) if s.ct_eq(presented) => Decision::Known,
        (AgentKeyPolicy::Expect(_), stored) => Decision::Remember {
            replaces: stored.copied(),
        },
        (_, Some(s)) => Decision::Changed { stored: *s },
        (AgentKeyPolicy::AcceptNew, None) => Decision::Remember { replaces: None },
        (AgentKeyPolicy::KnownOnly, None) => Decision::Unknown,
    }
}

/// Why an agent's key was refused, for the operator: each names the presented fingerprint
/// and says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// First connection and nobody accepted the key (`viewer session` without a flag).
    Unknown {
        /// The agent's address.
        address: String,
        /// Its key.
        presented: Fingerprint,
    },
    /// The operator declined the key in the window, or did not answer in time.
    Declined {
        /// The agent's address.
        address: String,
        /// Its key.
        presented: Fingerprint,
    },
    /// Another key is stored for the address.
    Changed {
        /// The agent's address.
        address: String,
        /// Its key.
        presented: Fingerprint,
        /// The stored key.
        stored: Fingerprint,
        /// The known-hosts file.
        file: PathBuf,
    },
    /// Not the key `--agent-key` named.
    Mismatch {
        /// The agent's address.
        address: String,
        /// Its key.
        presented: Fingerprint,
        /// The key named.
        expected: Fingerprint,
    },
}

impl fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRefusal::Unknown { address, presented } => write!(
                f,
                "first connection to the agent at {address}: its key fingerprint is {presented}. \
                 Not connected: compare it with what `agent fingerprint` prints on the kiosk, \
                 then connect with --agent-key {presented} (or accept it unchecked with \
                 --accept-new-agent-key)"
            ),
            KeyRefusal::Declined { address, presented } => write!(
                f,
                "not connected: the key of the agent at {address} ({presented}) was not accepted"
            ),
            KeyRefusal::Changed {
                address,
                presented,
                stored,
                file,
            } => write!(
                f,
                "the key of the agent at {address} has changed: it presented {presented}, but \
                 {} holds {stored} for it. Refused: a reinstalled kiosk has a new key, but so \
                 does someone in the middle. Once the kiosk's administrator confirms the new \
                 key (`agent fingerprint`), remove the line for {address} from that file, or \
                 connect with --agent-key {presented}",
                file.display()
            ),
            KeyRefusal::Mismatch {
                address,
                presented,
                expected,
            } => write!(
                f,
                "the agent at {address} presented key {presented}, not {expected} as \
                 --agent-key expects. Refused"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::fs;

    fn addr(s: &str) -> DirectAddress {
        s.parse().unwrap()
    }

    const A: Fingerprint = Fingerprint([0xaa; 32]);
    const B: Fingerprint = Fingerprint([0xbb; 32]);

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_decision_new_same_changed_override() {
        use AgentKeyPolicy::*;
        // New address.
        assert_eq!(decide(None, &A, KnownOnly), Decision::Unknown);
        assert_eq!(
            decide(None, &A, AcceptNew),
            Decision::Remember { replaces: None }
        );
        assert_eq!(
            decide(None, &A, Expect(A)),
            Decision::Remember { replaces: None }
        );
        assert_eq!(
            decide(None, &A, Expect(B)),
            Decision::Mismatch { expected: B }
        );
        // Same key as stored.
        for policy in [KnownOnly, AcceptNew, Expect(A)] {
            assert_eq!(decide(Some(&A), &A, policy), Decision::Known, "{policy:?}");
        }
        assert_eq!(
            decide(Some(&A), &A, Expect(B)),
            Decision::Mismatch { expected: B }
        );
        // Changed: refused, even with --accept-new-agent-key.
        assert_eq!(
            decide(Some(&A), &B, KnownOnly),
            Decision::Changed { stored: A }
        );
        assert_eq!(
            decide(Some(&A), &B, AcceptNew),
            Decision::Changed { stored: A }
        );
        // --agent-key NEW overrides and replaces the entry; another key is still refused.
        assert_eq!(
            decide(Some(&A), &B, Expect(B)),
            Decision::Remember { replaces: Some(A) }
        );
        assert_eq!(
            decide(Some(&A), &B, Expect(A)),
            Decision::Mismatch { expected: A }
        );
    }

    #[test]
    fn messages_name_both_keys_and_the_way_out() {
        let changed = KeyRefusal::Changed {
            address: "kiosk.lan:7615".into(),
            presented: B,
            stored: A,
            file: "/d/known-hosts".into(),
        }
        .to_string();
        for part in [
            &A.to_string(),
            &B.to_string(),
            "/d/known-hosts",
            "kiosk.lan:7615",
            &format!("--agent-key {B}"),
        ] {
            assert!(changed.contains(part), "{part} missing: {changed}");
        }
        let unknown = KeyRefusal::Unknown {
            address: "kiosk.lan:7615".into(),
            presented: A,
        }
        .to_string();
        assert!(unknown.contains(&format!("--agent-key {A}")), "{unknown}");
        assert!(unknown.contains("--accept-new-agent-key"), "{unknown}");
        let mismatch = KeyRefusal::Mismatch {
            address: "kiosk.lan:7615".into(),
            presented: A,
            expected: B,
        }
        .to_string();
        assert!(mismatch.contains(&A.to_string()) && mismatch.contains(&B.to_string()));
        // None of them reads as the agent refusing the operator (another exit status).
        for m in [changed, unknown, mismatch] {
            assert!(!m.starts_with(crate::direct::REFUSED_PREFIX), "{m}");
        }
    }

    #[test]
    fn addresses_are_stored_in_one_spelling() {
        assert_eq!(address_key(&addr("Kiosk.LAN")), "kiosk.lan:7615");
        assert_eq!(address_key(&addr("[fd00:0::20]:99")), "[fd00::20]:99");
        assert_eq!(address_key(&addr("fd00::20")), "[fd00::20]:7615");
        assert_eq!(address_key(&addr("192.168.1.20")), "192.168.1.20:7615");
        let mut hosts = KnownHosts::default();
        hosts.set(&addr("KIOSK.lan:7615"), A);
        assert_eq!(hosts.get(&addr("kiosk.lan")), Some(A));
        assert_eq!(hosts.get(&addr("kiosk.lan:7616")), None);
    }

    #[test]
    fn store_remember_update_and_keep_comments() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("viewer");
        assert_eq!(load(&data).unwrap(), KnownHosts::default(), "no file yet");
        remember(&data, &addr("192.168.1.20"), A).unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&path(&data)), 0o600);
            assert_eq!(mode(&data), 0o700);
        }
        let text = fs::read_to_string(path(&data)).unwrap();
        assert!(text.starts_with("# Sightline viewer"), "{text}");
        assert!(
            text.ends_with(&format!("192.168.1.20:7615 {A}\n")),
            "{text}"
        );
        // A comment of the admin's and a second agent; then the first one's key is replaced
        // in place.
        let text = format!("{text}# the lab kiosk\n[fd00::20]:7615 {B}\n");
        certstore::write_atomically(&path(&data), text.as_bytes()).unwrap();
        remember(&data, &addr("192.168.1.20:7615"), B).unwrap();
        let hosts = load(&data).unwrap();
        assert_eq!(hosts.get(&addr("192.168.1.20")), Some(B));
        assert_eq!(hosts.get(&addr("fd00::20")), Some(B));
        let after = fs::read_to_string(path(&data)).unwrap();
        assert_eq!(
            after,
            text.replace(&format!(":7615 {A}"), &format!(":7615 {B}"))
        );
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(&data).unwrap().count(), 1);
    }

    #[test]
    fn damaged_files_are_refused_and_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("192.168.1.20:7615\n".to_string(), "line 1: expected"),
            (format!("# ok\nkiosk {A} extra\n"), "line 2: expected"),
            (
                "kiosk nothex\n".to_string(),
                "line 1: \"nothex\" is not a key fingerprint",
            ),
            (format!("kiosk:0 {A}\n"), "line 1: bad address"),
            (
                format!("kiosk {A}\nKIOSK:7615 {B}\n"),
                "line 2: a second entry for kiosk:7615",
            ),
        ];
        for (text, why) in cases {
            certstore::write_atomically(&path(dir.path()), text.as_bytes()).unwrap();
            let err = load(dir.path()).expect_err(why).to_string();
            assert!(err.contains(FILE) && err.contains(why), "{err}");
            assert!(err.contains("fix or remove the file"), "{err}");
            let err = remember(dir.path(), &addr("other"), A).expect_err("refused");
            assert!(err.to_string().contains(why), "{err}");
            assert_eq!(fs::read_to_string(path(dir.path())).unwrap(), text);
        }
        certstore::write_atomically(&path(dir.path()), &[0xff, 0xfe]).unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
        // Not a regular file.
        fs::remove_file(path(dir.path())).unwrap();
        fs::create_dir(path(dir.path())).unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        remember(dir.path(), &addr("kiosk"), A).unwrap();
        let before = fs::read(path(dir.path())).unwrap();
        chmod(&path(dir.path()), 0o644);
        let err = load(dir.path()).expect_err("loose");
        assert!(
            matches!(err, StoreError::LoosePermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(remember(dir.path(), &addr("kiosk"), B).is_err());
        assert_eq!(
            fs::read(path(dir.path())).unwrap(),
            before,
            "never replaced"
        );
        assert_eq!(mode(&path(dir.path())), 0o644);
    }
}

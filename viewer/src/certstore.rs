//! The operator certificate kept for direct (LAN) connections. After every successful relay
//! login the viewer stores the certificate the relay issued (`operator-cert.bin`,
//! [`OperatorCert::to_bytes`]) and the relay CA public key it chains to (`relay-ca.der`,
//! SubjectPublicKeyInfo DER) in its data directory, so that it can later connect straight to a
//! LAN-only agent while the certificate is valid.
//!
//! Both files are written atomically (a temporary file of mode 0600 in the same directory,
//! synced, then renamed over the old one), so a reader never sees half a file. Files that
//! group or others may access, that are not regular files, or whose contents do not parse
//! are refused with an error naming the file; nothing here replaces them except [`save`],
//! which a relay login calls.

use sightline_core::cert::OperatorCert;
use sightline_core::identity::{PublicIdentity, MIN_PEER_BITS};
use sightline_net::keystore;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The stored operator certificate, in the viewer's data directory.
pub const CERT_FILE: &str = "operator-cert.bin";
/// The stored relay CA public key (SubjectPublicKeyInfo DER), in the viewer's data directory.
pub const CA_FILE: &str = "relay-ca.der";
/// Larger files are not ours (a certificate is about 700 bytes, a CA key about 550).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A certificate and the CA key it claims to chain to, as read from disk (parsed, not yet
/// verified: see [`crate::direct::check_stored`]).
#[derive(Debug, Clone)]
pub struct StoredCert {
    /// The operator certificate.
    pub cert: OperatorCert,
    /// The relay CA key it was issued under.
    pub ca: PublicIdentity,
}

/// Why the stored certificate could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may access the file.
    #[error("{path}: permissions {mode:o} are too open; the file must be accessible by its owner only (chmod 600)")]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not what it should be.
    #[error("{path}: {reason}")]
    BadContents {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// One of the two files is there without the other.
    #[error("{present} is there but {missing} is missing")]
    Incomplete {
        /// The file found.
        present: PathBuf,
        /// The file not found.
        missing: PathBuf,
    },
    /// The data directory could not be created.
    #[error(transparent)]
    Dir(#[from] keystore::KeyError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::BadContents {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Stores `cert` and the CA key `ca` in `dir` (created with mode 0700 when missing), each
/// written atomically with mode 0600, replacing whatever was there.
pub fn save(dir: &Path, cert: &OperatorCert, ca: &PublicIdentity) -> Result<(), StoreError> {
    keystore::create_private_dir(dir)?;
    let cert_path = dir.join(CERT_FILE);
    let bytes = cert
        .to_bytes()
        .map_err(|e| bad(&cert_path, format!("cannot encode the certificate: {e}")))?;
    // The CA first: a certificate never sits next to a CA key older than itself.
    write_atomically(&dir.join(CA_FILE), ca.spki_der())?;
    write_atomically(&cert_path, &bytes)
}

/// Reads the stored certificate and CA key from `dir`: `Ok(None)` when neither file exists;
/// an error when only one does, when either is accessible to group or others, is not a regular
/// file, or does not parse.
pub fn load(dir: &Path) -> Result<Option<StoredCert>, StoreError> {
    let cert_path = dir.join(CERT_FILE);
    let ca_path = dir.join(CA_FILE);
    let cert_bytes = read_private(&cert_path)?;
    let ca_bytes = read_private(&ca_path)?;
    let (cert_bytes, ca_bytes) = match (cert_bytes, ca_bytes) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(StoreError::Incomplete {
                present: cert_path,
                missing: ca_path,
            })
        }
        (None, Some(_)) => {
            return Err(StoreError::Incomplete {
                present: ca_path,
                missing: cert_path,
            })
        }
        (Some(c), Some(a)) => (c, a),
    };
    let cert = OperatorCert::from_bytes(&cert_bytes)
        .and_then(|c| c.unverified_body().map(|_| c))
        .map_err(|e| bad(&cert_path, format!("not an operator certificate ({e})")))?;
    let ca = PublicIdentity::from_spki_der(&ca_bytes, MIN_PEER_BITS).map_err(|e| {
        bad(
            &ca_path,
            format!("not a relay CA public key in SubjectPublicKeyInfo DER ({e})"),
        )
    })?;
    Ok(Some(StoredCert { cert, ca }))
}

/// The file's bytes after checking that it is a regular file only its owner can access;
/// `None` when it does not exist.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    if !meta.file_type().is_file() {
        return Err(bad(path, "not a regular file"));
    }
    let file = fs::File::open(path).map_err(io(path))?;
    // Checked on the open file, so a swap after the check above changes nothing.
    let meta = file.metadata().map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::LoosePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if !meta.is_file() {
        return Err(bad(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(bad(path, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(bad(path, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(Some(bytes))
}

/// Writes `contents` to a new temporary file of mode 0600 beside `path`, syncs it and renames
/// it over `path`; the temporary file is removed on failure.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            // Exactly 0600 whatever the umask.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    // Make the rename itself durable; not all platforms can open a directory.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::testkeys::{keys, valid_cert};

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
    fn round_trip_with_owner_only_files() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("viewer");
        assert!(load(&data).unwrap().is_none(), "nothing stored yet");
        let cert = valid_cert(sightline_net::clock::now_unix());
        let ca = keys().ca.public();
        save(&data, &cert, ca).unwrap();
        let stored = load(&data).unwrap().expect("stored");
        assert_eq!(stored.cert, cert);
        assert_eq!(stored.ca, *ca);
        assert_eq!(fs::read(data.join(CA_FILE)).unwrap(), ca.spki_der());
        assert_eq!(
            fs::read(data.join(CERT_FILE)).unwrap(),
            cert.to_bytes().unwrap()
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&data.join(CERT_FILE)), 0o600);
            assert_eq!(mode(&data.join(CA_FILE)), 0o600);
            assert_eq!(mode(&data), 0o700);
        }
        // No temporary files are left behind.
        let mut names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![CERT_FILE, CA_FILE]);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_login_overwrites_loose_or_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CERT_FILE), b"junk").unwrap();
        chmod(&dir.path().join(CERT_FILE), 0o666);
        fs::write(dir.path().join(CA_FILE), b"junk").unwrap();
        assert!(load(dir.path()).is_err());
        let cert = valid_cert(sightline_net::clock::now_unix());
        save(dir.path(), &cert, keys().ca.public()).unwrap();
        assert_eq!(mode(&dir.path().join(CERT_FILE)), 0o600);
        assert_eq!(load(dir.path()).unwrap().expect("stored").cert, cert);
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cert = valid_cert(sightline_net::clock::now_unix());
        save(dir.path(), &cert, keys().ca.public()).unwrap();
        for (file, loose) in [(CERT_FILE, 0o644), (CA_FILE, 0o660), (CERT_FILE, 0o604)] {
            let path = dir.path().join(file);
            let before = fs::read(&path).unwrap();
            chmod(&path, loose);
            let err = load(dir.path()).expect_err("loose");
            assert!(
                matches!(&err, StoreError::LoosePermissions { mode, .. } if *mode == loose),
                "{err}"
            );
            let text = err.to_string();
            assert!(text.contains(file) && text.contains("chmod 600"), "{text}");
            assert_eq!(fs::read(&path).unwrap(), before, "never replaced");
            assert_eq!(mode(&path), loose);
            chmod(&path, 0o600);
        }
        assert!(load(dir.path()).unwrap().is_some());
    }

    #[test]
    fn garbage_and_half_stores_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cert = valid_cert(sightline_net::clock::now_unix());
        save(dir.path(), &cert, keys().ca.public()).unwrap();
        let write = |file: &str, bytes: &[u8]| {
            // Through the same writer, so only the contents are wrong.
            write_atomically(&dir.path().join(file), bytes).unwrap();
        };

        write(CERT_FILE, b"not a certificate at all");
        let err = load(dir.path()).expect_err("garbage certificate");
        assert!(matches!(err, StoreError::BadContents { .. }), "{err}");
        assert!(
            err.to_string().contains("not an operator certificate"),
            "{err}"
        );
        write(CERT_FILE, &cert.to_bytes().unwrap());

        write(CA_FILE, &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let err = load(dir.path()).expect_err("garbage CA key");
        assert!(
            err.to_string().contains("not a relay CA public key"),
            "{err}"
        );
        // A key too short for a CA is refused too.
        write(CA_FILE, b"");
        assert!(load(dir.path()).is_err());
        write(CA_FILE, keys().ca.public().spki_der());
        assert!(load(dir.path()).unwrap().is_some());

        fs::remove_file(dir.path().join(CA_FILE)).unwrap();
        let err = load(dir.path()).expect_err("half a store");
        assert!(matches!(err, StoreError::Incomplete { .. }), "{err}");
        assert!(err.to_string().contains(CA_FILE), "{err}");

        // Not a regular file.
        fs::create_dir(dir.path().join(CA_FILE)).unwrap();
        let err = load(dir.path()).expect_err("a directory");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cert = valid_cert(sightline_net::clock::now_unix());
        save(dir.path(), &cert, keys().ca.public()).unwrap();
        write_atomically(
            &dir.path().join(CERT_FILE),
            &vec![0u8; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        let err = load(dir.path()).expect_err("too large");
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}

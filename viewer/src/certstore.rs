//! The operator certificate kept for direct (LAN) connections. After every successful relay
//! login the viewer stores, in its data directory, the certificate the relay issued
//! (`operator-cert.bin`, [`OperatorCert::to_bytes`]), the relay authority it chains to
//! (`relay-authority.bin`: root key and issuer certificate, [`Authority::to_bytes`]) and the
//! relay's revocation list of that login (`revocations.bin`), so that it can later connect
//! straight to a LAN-only agent while the certificate is valid, and hand the list to kiosks
//! that hold an older one.
//!
//! Files are written atomically (a temporary file of mode 0600 in the same directory, synced,
//! then renamed over the old one), so a reader never sees half a file. Files that group or
//! others may access, that are not regular files, or whose contents do not parse are refused
//! with an error naming the file; nothing here replaces them except [`save`], which a relay
//! login calls. A store from before issuing keys (`relay-ca.der`, a certificate signed by the
//! root key) is reported as [`StoreError::Outdated`]: a relay login replaces it.

use sightline_core::authority::Authority;
use sightline_core::cert::OperatorCert;
use sightline_core::revocation::RevocationList;
use sightline_net::keystore;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The stored operator certificate, in the viewer's data directory.
pub const CERT_FILE: &str = "operator-cert.bin";
/// The stored relay authority (root key and issuer certificate), in the viewer's data
/// directory.
pub const CA_FILE: &str = "relay-authority.bin";
/// The stored revocation list of the last relay login, in the viewer's data directory.
pub const REVOCATIONS_FILE: &str = "revocations.bin";
/// The relay CA key stored by versions before issuing keys; removed by [`save`].
pub const OUTDATED_CA_FILE: &str = "relay-ca.der";
/// Larger files are not ours (a certificate is about 700 bytes, an authority about 1.5 KB, a
/// revocation list at most 48 KB).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A certificate, the authority it claims to chain to and the revocation list of the same
/// login, as read from disk (parsed and self-consistent, not yet verified against a pin or a
/// time: see [`crate::direct::check_stored`]).
#[derive(Debug, Clone)]
pub struct StoredCert {
    /// The operator certificate.
    pub cert: OperatorCert,
    /// The relay authority it was issued under.
    pub authority: Authority,
    /// The relay's revocation list at that login (absent in a store that lost it).
    pub revocations: Option<RevocationList>,
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
    /// A store written by a version before issuing keys: its certificate cannot be used.
    #[error("{0} was stored by an older version (before issuing keys)")]
    Outdated(PathBuf),
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

/// Stores `cert`, the authority `authority` that issued it and the relay's revocation list
/// `revocations` in `dir` (created with mode 0700 when missing), each written atomically with
/// mode 0600, replacing whatever was there.
pub fn save(
    dir: &Path,
    cert: &OperatorCert,
    authority: &Authority,
    revocations: &RevocationList,
) -> Result<(), StoreError> {
    keystore::create_private_dir(dir)?;
    let cert_path = dir.join(CERT_FILE);
    let bytes = cert
        .to_bytes()
        .map_err(|e| bad(&cert_path, format!("cannot encode the certificate: {e}")))?;
    let ca_path = dir.join(CA_FILE);
    let authority_bytes = authority
        .to_bytes()
        .map_err(|e| bad(&ca_path, format!("cannot encode the authority: {e}")))?;
    let list_path = dir.join(REVOCATIONS_FILE);
    let list_bytes = revocations.to_bytes().map_err(|e| {
        bad(
            &list_path,
            format!("cannot encode the revocation list: {e}"),
        )
    })?;
    // The authority first: a certificate never sits next to an authority older than itself.
    write_atomically(&ca_path, &authority_bytes)?;
    write_atomically(&list_path, &list_bytes)?;
    write_atomically(&cert_path, &bytes)?;
    match fs::remove_file(dir.join(OUTDATED_CA_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(&dir.join(OUTDATED_CA_FILE))(e))
        }
        _ => Ok(()),
    }
}

/// Reads the stored certificate, authority and revocation list from `dir`: `Ok(None)` when
/// neither certificate nor authority exists; an error when only one does, when any file is
/// accessible to group or others, is not a regular file, or does not parse.
pub fn load(dir: &Path) -> Result<Option<StoredCert>, StoreError> {
    let cert_path = dir.join(CERT_FILE);
    let ca_path = dir.join(CA_FILE);
    let cert_bytes = read_private(&cert_path)?;
    let ca_bytes = read_private(&ca_path)?;
    let (cert_bytes, ca_bytes) = match (cert_bytes, ca_bytes) {
        (None, None) => return Ok(None),
        (Some(_), None) if fs::symlink_metadata(dir.join(OUTDATED_CA_FILE)).is_ok() => {
            return Err(StoreError::Outdated(dir.join(OUTDATED_CA_FILE)))
        }
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
    let authority = Authority::from_bytes(&ca_bytes).map_err(|e| {
        bad(
            &ca_path,
            format!("not a relay authority (root key and issuer certificate) ({e})"),
        )
    })?;
    let list_path = dir.join(REVOCATIONS_FILE);
    let revocations = match read_private(&list_path)? {
        None => None,
        Some(bytes) => Some(
            RevocationList::from_bytes(&bytes)
                .map_err(|e| bad(&list_path, format!("not a revocation list ({e})")))?,
        ),
    };
    Ok(Some(StoredCert {
        cert,
        authority,
        revocations,
    }))
}

/// The file's bytes after checking that it is a regular file only its owner can access;
/// `None` when it does not exist.
pub(crate) fn read_private(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
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
/// it over `path`; the temporary file is removed on failure ([`keystore::replace_secret`]).
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    keystore::replace_secret(path, contents).map_err(|e| match e {
        keystore::KeyError::Io { path, source } => StoreError::Io { path, source },
        other => StoreError::Dir(other),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::testkeys::{authority, keys, revocations, valid_cert};

    /// Saves `cert` with the relay's authority and a revocation list of sequence 1.
    fn save_valid(dir: &Path, cert: &OperatorCert) {
        save(dir, cert, &authority(), &revocations(1, &[3])).unwrap();
    }

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
        save_valid(&data, &cert);
        let stored = load(&data).unwrap().expect("stored");
        assert_eq!(stored.cert, cert);
        assert_eq!(stored.authority, authority());
        assert_eq!(stored.revocations.as_ref().map(|l| l.sequence()), Some(1));
        assert_eq!(
            fs::read(data.join(CA_FILE)).unwrap(),
            authority().to_bytes().unwrap()
        );
        assert_eq!(
            fs::read(data.join(CERT_FILE)).unwrap(),
            cert.to_bytes().unwrap()
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&data.join(CERT_FILE)), 0o600);
            assert_eq!(mode(&data.join(CA_FILE)), 0o600);
            assert_eq!(mode(&data.join(REVOCATIONS_FILE)), 0o600);
            assert_eq!(mode(&data), 0o700);
        }
        // No temporary files are left behind.
        let mut names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![CERT_FILE, CA_FILE, REVOCATIONS_FILE]);
        // Without its revocation list the store is still usable.
        fs::remove_file(data.join(REVOCATIONS_FILE)).unwrap();
        assert!(load(&data).unwrap().expect("stored").revocations.is_none());
    }

    #[test]
    fn a_store_from_before_issuing_keys_is_outdated_and_replaced_by_a_login() {
        let dir = tempfile::tempdir().unwrap();
        let cert = valid_cert(sightline_net::clock::now_unix());
        write_atomically(&dir.path().join(CERT_FILE), &cert.to_bytes().unwrap()).unwrap();
        write_atomically(
            &dir.path().join(OUTDATED_CA_FILE),
            keys().root.public().spki_der(),
        )
        .unwrap();
        let err = load(dir.path()).expect_err("outdated");
        assert!(matches!(err, StoreError::Outdated(_)), "{err}");
        save_valid(dir.path(), &cert);
        assert!(load(dir.path()).unwrap().is_some());
        assert!(!dir.path().join(OUTDATED_CA_FILE).exists(), "removed");
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
        save_valid(dir.path(), &cert);
        assert_eq!(mode(&dir.path().join(CERT_FILE)), 0o600);
        assert_eq!(load(dir.path()).unwrap().expect("stored").cert, cert);
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cert = valid_cert(sightline_net::clock::now_unix());
        save_valid(dir.path(), &cert);
        for (file, loose) in [
            (CERT_FILE, 0o644),
            (CA_FILE, 0o660),
            (CERT_FILE, 0o604),
            (REVOCATIONS_FILE, 0o644),
        ] {
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
        save_valid(dir.path(), &cert);
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
        let err = load(dir.path()).expect_err("garbage authority");
        assert!(err.to_string().contains("not a relay authority"), "{err}");
        // A bare key is not an authority either.
        write(CA_FILE, keys().root.public().spki_der());
        assert!(load(dir.path()).is_err());
        write(CA_FILE, &authority().to_bytes().unwrap());
        assert!(load(dir.path()).unwrap().is_some());
        // A damaged revocation list is refused, not ignored.
        let mut list = revocations(2, &[]).to_bytes().unwrap();
        let last = list.len() - 1;
        list[last] ^= 1;
        write(REVOCATIONS_FILE, &list);
        let err = load(dir.path()).expect_err("damaged list");
        assert!(err.to_string().contains("not a revocation list"), "{err}");
        write(REVOCATIONS_FILE, &revocations(2, &[]).to_bytes().unwrap());
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
        save_valid(dir.path(), &cert);
        write_atomically(
            &dir.path().join(CERT_FILE),
            &vec![0u8; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        let err = load(dir.path()).expect_err("too large");
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}

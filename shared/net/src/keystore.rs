//! Key files: created with owner-only permissions, refused (never replaced) when their
//! permissions are loose or their contents unreadable.

use sightline_core::identity::PrivateIdentity;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors loading or creating a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error("{path}: permissions {mode:o} are too open; the key must be readable by its owner only (chmod 600)")]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not a PKCS#8 PEM RSA private key.
    #[error("{path}: not a usable PKCS#8 PEM RSA private key ({reason}); refusing to replace it")]
    BadContents {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key is too weak to be used.
    #[error("{path}: RSA key has {bits} bits; at least {min} are required")]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its size.
        bits: usize,
        /// The minimum.
        min: usize,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io(dir))
}

/// Writes a new secret file with mode 0600; fails if it exists.
pub fn write_new_secret(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(contents).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads a secret file after checking that only its owner can access it.
pub fn read_secret(path: &Path) -> Result<String, KeyError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::LoosePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => KeyError::BadContents {
            path: path.to_path_buf(),
            reason: "not text".into(),
        },
        _ => KeyError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })
}

/// Reads a file of at most `max` bytes after checking that it is a regular file only its owner
/// can access (checked on the open file).
pub fn read_private_bytes(path: &Path, max: u64) -> Result<Vec<u8>, KeyError> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(KeyError::BadContents {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::LoosePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > max {
        return Err(KeyError::BadContents {
            path: path.to_path_buf(),
            reason: format!("larger than {max} bytes"),
        });
    }
    Ok(bytes)
}

/// Replaces `path` atomically with `contents`: a new temporary file of mode 0600 beside it,
/// synced, then renamed over it (the temporary file is removed on failure). A reader sees the
/// old file or the new one, never half of one.
pub fn replace_secret(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_private_dir(dir)?;
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

/// Loads a PKCS#8 PEM RSA key of at least `min_bits` bits.
pub fn load_key(path: &Path, min_bits: usize) -> Result<PrivateIdentity, KeyError> {
    let pem = zeroize::Zeroizing::new(read_secret(path)?);
    let key = PrivateIdentity::from_pkcs8_pem(&pem).map_err(|e| KeyError::BadContents {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let bits = key.public().bits();
    if bits < min_bits {
        return Err(KeyError::TooShort {
            path: path.to_path_buf(),
            bits,
            min: min_bits,
        });
    }
    Ok(key)
}

/// Loads the key at `path`, or creates a new one of `bits` bits if no file exists. Returns the
/// key and whether it was created.
pub fn load_or_create_key(
    path: &Path,
    bits: usize,
    min_bits: usize,
) -> Result<(PrivateIdentity, bool), KeyError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok((load_key(path, min_bits)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateIdentity::generate(&mut rand_core::OsRng, bits).map_err(|e| {
                KeyError::BadContents {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
            let pem = key.to_pkcs8_pem().map_err(|e| KeyError::BadContents {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            write_new_secret(path, pem.as_bytes())?;
            Ok((key, true))
        }
        Err(e) => Err(KeyError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_loose_permissions_and_garbage_without_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        fs::write(&path, "not a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load_or_create_key(&path, 2048, 2048),
                Err(KeyError::LoosePermissions { mode: 0o644, .. })
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            load_or_create_key(&path, 2048, 2048),
            Err(KeyError::BadContents { .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a key");
    }

    #[test]
    fn replaced_files_are_private_whole_and_size_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("file.bin");
        replace_secret(&path, b"first").unwrap();
        replace_secret(&path, b"second").unwrap();
        assert_eq!(read_private_bytes(&path, 64).unwrap(), b"second");
        assert!(matches!(
            read_private_bytes(&path, 3),
            Err(KeyError::BadContents { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                read_private_bytes(&path, 64),
                Err(KeyError::LoosePermissions { .. })
            ));
        }
        // Nothing but the file itself is left in the directory.
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }
}

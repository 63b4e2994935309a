//! The recording files on disk: the private directory (0700), each file created owner-only
//! (0600) and only ever appended to, every append on disk (`fdatasync`) before it is
//! acknowledged; reading back (hashing, copying out exactly) and deleting.

use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file operation that failed, with its path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FileError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl From<FileError> for crate::store::db::DbError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the recordings directory (0700) if missing; refuses one that group or others may
/// enter, since its names are session ids.
pub fn ensure_dir(dir: &Path) -> Result<(), FileError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(at(dir)(e)),
    }
    let meta = std::fs::metadata(dir).map_err(at(dir))?;
    if !meta.is_dir() {
        return Err(at(dir)(std::io::Error::other("not a directory")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(at(dir)(std::io::Error::other(format!(
                "permissions {mode:o} are too open; the recordings directory must be \
                 accessible by its owner only (chmod 700)"
            ))));
        }
    }
    Ok(())
}

/// Opens `path` to append to, creating it (0600, and its directory) if missing; the file and
/// its length.
pub fn open_append(path: &Path) -> Result<(File, u64), FileError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    ensure_dir(dir)?;
    let created = !path.exists();
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path).map_err(at(path))?;
    let len = file.metadata().map_err(at(path))?.len();
    if created {
        // The new name on disk too, so an acknowledged byte never lives in a file that a
        // power cut forgets.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(at(dir))?;
    }
    Ok((file, len))
}

/// Appends `data` to `file` (at `path`) and waits until it is on disk.
pub fn append(file: &mut File, path: &Path, data: &[u8]) -> Result<(), FileError> {
    file.write_all(data).map_err(at(path))?;
    file.sync_data().map_err(at(path))
}

/// Feeds bytes `from..to` of `path` to `hashers` (each gets every byte from its own start
/// offset on: `(start, hasher)`); used when a recording is taken up again.
pub fn hash_ranges(
    path: &Path,
    to: u64,
    hashers: &mut [(u64, &mut Sha256)],
) -> Result<(), FileError> {
    let mut f = File::open(path).map_err(at(path))?;
    let from = hashers.iter().map(|(s, _)| *s).min().unwrap_or(to);
    f.seek(SeekFrom::Start(from)).map_err(at(path))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = from;
    while pos < to {
        let want = usize::try_from((to - pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = f.read(&mut buf[..want]).map_err(at(path))?;
        if n == 0 {
            return Err(at(path)(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file ends at byte {pos}, short of {to}"),
            )));
        }
        for (start, h) in hashers.iter_mut() {
            let skip = usize::try_from(start.saturating_sub(pos)).unwrap_or(usize::MAX);
            if skip < n {
                h.update(&buf[skip..n]);
            }
        }
        pos += n as u64;
    }
    Ok(())
}

/// SHA-256 of the whole file, hex.
pub fn sha256(path: &Path) -> Result<String, FileError> {
    let len = std::fs::metadata(path).map_err(at(path))?.len();
    let mut h = Sha256::new();
    hash_ranges(path, len, &mut [(0, &mut h)])?;
    Ok(hex::encode(h.finalize()))
}

/// Copies `src` to a new file `dst` byte for byte (refusing to replace an existing file);
/// returns the bytes copied.
pub fn copy_out(src: &Path, dst: &Path) -> Result<u64, FileError> {
    let mut from = File::open(src).map_err(at(src))?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut to = opts.open(dst).map_err(at(dst))?;
    let n = std::io::copy(&mut from, &mut to).map_err(at(dst))?;
    to.sync_all().map_err(at(dst))?;
    Ok(n)
}

/// Deletes `path`; one already gone is fine.
pub fn remove(path: &Path) -> Result<(), FileError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(at(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn appends_privately_hashes_ranges_and_copies_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recordings").join("a.age");
        let (mut f, len) = open_append(&path).unwrap();
        assert_eq!(len, 0);
        append(&mut f, &path, b"hello ").unwrap();
        append(&mut f, &path, b"world").unwrap();
        drop(f);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let (_, len) = open_append(&path).unwrap();
        assert_eq!(len, 11);
        let (mut whole, mut tail) = (Sha256::new(), Sha256::new());
        hash_ranges(&path, 11, &mut [(0, &mut whole), (6, &mut tail)]).unwrap();
        assert_eq!(
            whole.finalize().as_slice(),
            Sha256::digest(b"hello world").as_slice()
        );
        assert_eq!(
            tail.finalize().as_slice(),
            Sha256::digest(b"world").as_slice()
        );
        assert!(hash_ranges(&path, 12, &mut [(0, &mut Sha256::new())]).is_err());

        let out = dir.path().join("out.age");
        assert_eq!(copy_out(&path, &out).unwrap(), 11);
        assert_eq!(std::fs::read(&out).unwrap(), b"hello world");
        assert!(copy_out(&path, &out).is_err(), "never overwrites");
        remove(&path).unwrap();
        remove(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_may_enter_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("recordings");
        std::fs::create_dir(&rec).unwrap();
        std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = ensure_dir(&rec).unwrap_err().to_string();
        assert!(e.contains("too open"), "{e}");
    }
}

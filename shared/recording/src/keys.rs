//! The auditors' keys: X25519 recipients (`age1...`) to encrypt to, and identity files in the
//! format `age-keygen` writes (`AGE-SECRET-KEY-1...` lines, `#` comments) to decrypt with.

use std::path::Path;
use std::str::FromStr;

use age::x25519::{Identity, Recipient};

use crate::error::RecordingError;

/// Parses the auditors' public keys (`age1...`, surrounding spaces ignored). An empty list is
/// an error: nobody could ever read the recording.
pub fn parse_recipients(list: &[String]) -> Result<Vec<Recipient>, RecordingError> {
    if list.is_empty() {
        return Err(RecordingError::NoRecipients);
    }
    list.iter()
        .map(|s| Recipient::from_str(s.trim()).map_err(|_| RecordingError::BadRecipient(s.clone())))
        .collect()
}

/// Reads an identity file as `age-keygen` writes it: one `AGE-SECRET-KEY-1...` per line, blank
/// lines and `#` comments allowed. Other identity types (passphrases, SSH keys, plugins) are
/// refused with the line they are on.
pub fn parse_identity_file(path: &Path) -> Result<Vec<Identity>, RecordingError> {
    let text = std::fs::read_to_string(path).map_err(|e| RecordingError::file(path, e))?;
    parse_identities(&text, path)
}

/// Parses identity file `text` (`path` for error messages).
pub(crate) fn parse_identities(text: &str, path: &Path) -> Result<Vec<Identity>, RecordingError> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| RecordingError::BadIdentity {
            path: path.to_path_buf(),
            line: i + 1,
            why: why.to_string(),
        };
        if !line.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-1") {
            return Err(bad(
                "not an age X25519 identity (AGE-SECRET-KEY-1...); only those can open recordings",
            ));
        }
        // The parse error is not shown: it could echo parts of the secret key.
        found.push(Identity::from_str(line).map_err(|_| bad("malformed AGE-SECRET-KEY-1 line"))?);
    }
    if found.is_empty() {
        return Err(RecordingError::NoIdentity(path.to_path_buf()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn identity_files_in_the_age_keygen_format() {
        let id = Identity::generate();
        let text = format!(
            "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        let ids = parse_identities(&text, Path::new("k.txt")).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].to_public(), id.to_public());

        let err = parse_identities("# only a comment\n", Path::new("k.txt"))
            .err()
            .unwrap();
        assert!(matches!(err, RecordingError::NoIdentity(_)), "{err}");
        let err = parse_identities("# c\nssh-ed25519 AAAA\n", Path::new("k.txt"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse_identities("AGE-SECRET-KEY-1XYZ\n", Path::new("k.txt"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("malformed"), "{err}");
    }

    #[test]
    fn recipients() {
        let r = Identity::generate().to_public().to_string();
        assert_eq!(parse_recipients(&[format!(" {r} ")]).unwrap().len(), 1);
        assert!(matches!(
            parse_recipients(&[]),
            Err(RecordingError::NoRecipients)
        ));
        assert!(matches!(
            parse_recipients(&[r, "age1nope".into()]),
            Err(RecordingError::BadRecipient(s)) if s == "age1nope"
        ));
    }
}

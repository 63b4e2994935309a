//! Operator passwords: the policy a new password must meet, argon2id hashing in PHC strings,
//! and verification.
//!
//! The policy is a struct so that rules can be configured without touching the callers. Its
//! rules: a minimum length in characters (never below [`MIN_ALLOWED_CHARS`]), a maximum length
//! in bytes, not the user name, not a commonly used password (the list embedded from
//! `assets/common-passwords.txt`), and not one of the account's recent passwords
//! ([`PasswordPolicy::check_history`], which needs the stored hashes).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The lowest minimum length a policy may have; configuration asking for less is refused, and
/// [`PasswordPolicy::check`] never applies a lower minimum even if a policy holds one.
pub const MIN_ALLOWED_CHARS: usize = 8;

/// The common-password list: SecLists' most common passwords of at least 8 characters (see
/// `assets/common-passwords.sh`), lower-cased, sorted in byte order, one per line, after `#`
/// comment lines.
const COMMON_PASSWORDS_TEXT: &str = include_str!("../../../../assets/common-passwords.txt");

/// Ways a new password can fail the policy. The texts are shown to the administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fewer characters than the minimum.
    #[error("password too short: use at least {min} characters")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More bytes than the maximum.
    #[error("password too long: use at most {max} bytes")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// The password is the user name (in any letter case).
    #[error("password must not be the user name")]
    SameAsUserName,
    /// The password is in the common-password list (in any letter case, or once trailing digits
    /// and punctuation are removed).
    #[error("password is in the list of commonly used passwords")]
    Common,
    /// The password equals one of the account's recent passwords.
    #[error("password was used recently: choose one not among your last {history}")]
    Reused {
        /// How many previous passwords are remembered.
        history: usize,
    },
}

/// Rules for new passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values); values below [`MIN_ALLOWED_CHARS`] act as
    /// [`MIN_ALLOWED_CHARS`].
    pub min_chars: usize,
    /// Most bytes (UTF-8).
    pub max_bytes: usize,
    /// Refuse passwords in the embedded common-password list.
    pub reject_common: bool,
    /// How many previous passwords a new one must differ from (0: no history check).
    pub history: usize,
}

impl PasswordPolicy {
    /// The relay's default policy.
    pub const DEFAULT: PasswordPolicy = PasswordPolicy {
        min_chars: 12,
        max_bytes: 1024,
        reject_common: true,
        history: 5,
    };

    /// Checks a new password for account `user` against every rule except the history (see
    /// [`PasswordPolicy::check_history`]).
    pub fn check(&self, user: &str, password: &str) -> Result<(), PolicyError> {
        let min = self.min_chars.max(MIN_ALLOWED_CHARS);
        if password.chars().count() < min {
            return Err(PolicyError::TooShort { min });
        }
        if password.len() > self.max_bytes {
            return Err(PolicyError::TooLong {
                max: self.max_bytes,
            });
        }
        let lower = Zeroizing::new(password.to_lowercase());
        if *lower == user.to_lowercase() {
            return Err(PolicyError::SameAsUserName);
        }
        if self.reject_common && is_common(&lower) {
            return Err(PolicyError::Common);
        }
        Ok(())
    }

    /// Checks that `password` is none of the account's last [`PasswordPolicy::history`]
    /// passwords. `previous_hashes` are the stored PHC strings, newest first; only the first
    /// `history` of them are tried (each costs one argon2 verification). Damaged hashes are
    /// skipped.
    pub fn check_history(
        &self,
        password: &str,
        previous_hashes: &[String],
    ) -> Result<(), PolicyError> {
        let reused = previous_hashes
            .iter()
            .take(self.history)
            .any(|phc| verify_password(password, phc) == Verification::Match);
        if reused {
            return Err(PolicyError::Reused {
                history: self.history,
            });
        }
        Ok(())
    }
}

/// The common-password list, parsed on first use: sorted, deduplicated, without comments.
fn common_passwords() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<&'static str> = COMMON_PASSWORDS_TEXT
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        // The file is generated sorted; sorting again costs little and keeps the binary search
        // right should the file ever be edited by hand.
        list.sort_unstable();
        list.dedup();
        list
    })
}

/// Whether the lower-cased password `lower` is a common password: listed as it is, or listed
/// once its trailing digits and punctuation are removed ("password1234!" is "password" with
/// the usual decoration) provided at least [`MIN_ALLOWED_CHARS`] characters remain.
fn is_common(lower: &str) -> bool {
    let list = common_passwords();
    let listed = |candidate: &str| list.binary_search(&candidate).is_ok();
    if listed(lower) {
        return true;
    }
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    stem.len() < lower.len() && stem.chars().count() >= MIN_ALLOWED_CHARS && listed(stem)
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Hashing failed (argon2 refused its inputs; does not happen with the default parameters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes `password` with argon2id (default parameters) and a fresh random salt; returns the
/// PHC string to store.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches.
    Match,
    /// The password does not match.
    Mismatch,
    /// The stored hash cannot be parsed (a damaged database); treated as a mismatch.
    BadHash,
}

/// Checks `password` against a PHC string, with the parameters stored in it.
pub fn verify_password(password: &str, phc: &str) -> Verification {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verification::BadHash;
    };
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Verification::Match,
        Err(argon2::password_hash::Error::Password) => Verification::Mismatch,
        Err(_) => Verification::BadHash,
    }
}

/// Blocks of argon2 working memory that one verification with the default parameters needs
/// (19 MiB); see [`verify_password_with_memory`].
pub fn memory_blocks() -> usize {
    Params::DEFAULT.block_count()
}

/// Like [`verify_password`], but in `memory` instead of a fresh allocation, so that a caller
/// can reuse the same buffers for every login (otherwise each verification leaves 19 MiB in
/// the allocator's arenas, and the process only grows). A hash whose parameters need more
/// blocks than `memory` holds is verified with an allocation of its own.
pub fn verify_password_with_memory(
    password: &str,
    phc: &str,
    memory: &mut [Block],
) -> Verification {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verification::BadHash;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Verification::BadHash;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return Verification::BadHash;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return Verification::BadHash,
    };
    if params.block_count() > memory.len() {
        return verify_password(password, phc);
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return Verification::BadHash;
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut *memory,
    );
    if hashed.is_err() {
        return Verification::BadHash;
    }
    if bool::from(expected.as_bytes().ct_eq(&out)) {
        Verification::Match
    } else {
        Verification::Mismatch
    }
}

/// A hash of a random password that nobody knows. Verifying against it costs the same as a
/// real account, so an unknown user name takes as long to refuse as a wrong password.
pub fn dummy_hash() -> Result<String, HashError> {
    let mut secret = [0u8; 24];
    OsRng.fill_bytes(&mut secret);
    hash_password(&hex::encode(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert_eq!(
            verify_password("correct horse battery", &a),
            Verification::Match
        );
        assert_eq!(
            verify_password("correct horse batterx", &a),
            Verification::Mismatch
        );
        assert_eq!(verify_password("", &a), Verification::Mismatch);
        assert_eq!(
            verify_password("x", "not a phc string"),
            Verification::BadHash
        );
    }

    #[test]
    fn verifying_in_reused_memory_agrees_with_the_allocating_check() {
        let mut memory = vec![Block::default(); memory_blocks()];
        let a = hash_password("correct horse battery").unwrap();
        // A hash made with other parameters (argon2i, fewer blocks, three lanes) verifies the
        // same way, and one that needs more blocks than given falls back to allocating.
        let params = Params::new(64, 3, 3, Some(24)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"correct horse battery", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        for phc in [&a, &other] {
            for _ in 0..2 {
                assert_eq!(
                    verify_password_with_memory("correct horse battery", phc, &mut memory),
                    Verification::Match,
                    "{phc}"
                );
                assert_eq!(
                    verify_password_with_memory("correct horse batterx", phc, &mut memory),
                    Verification::Mismatch,
                    "{phc}"
                );
            }
        }
        let mut small = vec![Block::default(); 8];
        assert_eq!(
            verify_password_with_memory("correct horse battery", &a, &mut small),
            Verification::Match
        );
        for bad in [
            "not a phc string",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=7$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAA",
        ] {
            assert_eq!(
                verify_password_with_memory("x", bad, &mut memory),
                Verification::BadHash,
                "{bad}"
            );
        }
    }

    #[test]
    fn dummy_hash_matches_nothing_obvious() {
        let d = dummy_hash().unwrap();
        assert_eq!(verify_password("", &d), Verification::Mismatch);
        assert_eq!(verify_password("password1234", &d), Verification::Mismatch);
    }

    #[test]
    fn policy_checks_length_and_user_name() {
        let p = PasswordPolicy::DEFAULT;
        assert_eq!(
            p.check("alice", "short"),
            Err(PolicyError::TooShort { min: 12 })
        );
        assert_eq!(
            p.check("alice", "elevenchars"),
            Err(PolicyError::TooShort { min: 12 })
        );
        assert_eq!(p.check("alice", "twelve chars"), Ok(()));
        // Characters, not bytes: twelve 2-byte characters pass, eleven do not.
        assert_eq!(p.check("alice", &"é".repeat(12)), Ok(()));
        assert!(p.check("alice", &"é".repeat(11)).is_err());
        assert_eq!(
            p.check("alice", &"x".repeat(1025)),
            Err(PolicyError::TooLong { max: 1024 })
        );
        assert_eq!(
            p.check("Alice.Operator", "alice.operator"),
            Err(PolicyError::SameAsUserName)
        );
        assert!(PolicyError::SameAsUserName
            .to_string()
            .contains("user name"));
    }

    #[test]
    fn error_texts_name_the_rule() {
        let p = PasswordPolicy::DEFAULT;
        let text = |user: &str, pw: &str| p.check(user, pw).unwrap_err().to_string();
        let short = text("alice", "short");
        assert!(
            short.contains("too short") && short.contains("12"),
            "{short}"
        );
        let long = text("alice", &"x".repeat(1025));
        assert!(long.contains("too long") && long.contains("1024"), "{long}");
        assert!(text("bobbybobbybob", "BobbyBobbyBob").contains("user name"));
        assert_eq!(
            text("alice", "password1234"),
            "password is in the list of commonly used passwords"
        );
        assert_eq!(
            PolicyError::Reused { history: 5 }.to_string(),
            "password was used recently: choose one not among your last 5"
        );
    }

    #[test]
    fn default_policy_values() {
        let p = PasswordPolicy::default();
        assert_eq!(p, PasswordPolicy::DEFAULT);
        assert_eq!(p.min_chars, 12);
        assert_eq!(p.max_bytes, 1024);
        assert!(p.reject_common);
        assert_eq!(p.history, 5);
        const { assert!(PasswordPolicy::DEFAULT.min_chars >= MIN_ALLOWED_CHARS) };
    }

    #[test]
    fn minimum_is_never_below_allowed() {
        let p = PasswordPolicy {
            min_chars: 4,
            ..PasswordPolicy::DEFAULT
        };
        assert_eq!(
            p.check("alice", "seven77"),
            Err(PolicyError::TooShort { min: 8 })
        );
        assert_eq!(p.check("alice", "zq8#vy1k"), Ok(()));
        let p = PasswordPolicy {
            min_chars: 8,
            ..PasswordPolicy::DEFAULT
        };
        assert_eq!(p.check("alice", "zq8#vy1k"), Ok(()));
    }

    #[test]
    fn common_passwords_are_rejected() {
        let p = PasswordPolicy::DEFAULT;
        for pw in [
            "password1234",
            "qwerty123456",
            "1qaz2wsx3edc",
            "Password1234",
            "QWERTY123456",
            "1QAZ2wsx3EDC",
        ] {
            assert_eq!(p.check("alice", pw), Err(PolicyError::Common), "{pw}");
        }
        // Not rejected when the rule is off.
        let lax = PasswordPolicy {
            reject_common: false,
            ..PasswordPolicy::DEFAULT
        };
        assert_eq!(lax.check("alice", "password1234"), Ok(()));
    }

    #[test]
    fn common_stem_with_trailing_digits_and_punctuation_is_rejected() {
        let p = PasswordPolicy::DEFAULT;
        // Not listed as such, but "sunshine" with decoration appended.
        let pw = "Sunshine!7!7!7!9";
        assert!(common_passwords().binary_search(&"sunshine").is_ok());
        assert!(common_passwords()
            .binary_search(&pw.to_lowercase().as_str())
            .is_err());
        assert_eq!(p.check("alice", pw), Err(PolicyError::Common));
        // A stem shorter than the allowed minimum is not looked up: "qwerty" is common, but
        // this password is not rejected for it.
        let pw = "qwerty!83517294";
        assert!(common_passwords().binary_search(&pw).is_err());
        assert_eq!(p.check("alice", pw), Ok(()));
        // Digits inside the password are not stripped.
        assert_eq!(p.check("alice", "sun7shine!7!7!7!9"), Ok(()));
    }

    #[test]
    fn random_long_passphrase_is_accepted() {
        let mut bytes = [0u8; 8];
        OsRng.fill_bytes(&mut bytes);
        let pw = format!("tangerine orbit cobalt {}", hex::encode(bytes));
        assert_eq!(PasswordPolicy::DEFAULT.check("alice", &pw), Ok(()));
        assert_eq!(
            PasswordPolicy::DEFAULT.check("alice", "correct horse battery staple"),
            Ok(())
        );
    }

    #[test]
    fn history_rejects_recent_passwords_only() {
        let previous = ["third password!", "second password!", "first password!"];
        let hashes: Vec<String> = previous
            .iter()
            .map(|pw| hash_password(pw).unwrap())
            .collect();
        let p = PasswordPolicy {
            history: 3,
            ..PasswordPolicy::DEFAULT
        };
        for pw in previous {
            assert_eq!(
                p.check_history(pw, &hashes),
                Err(PolicyError::Reused { history: 3 }),
                "{pw}"
            );
        }
        assert_eq!(p.check_history("a brand new password", &hashes), Ok(()));
        assert_eq!(p.check_history("a brand new password", &[]), Ok(()));

        // Only the newest `history` hashes count (callers pass newest first).
        let two = PasswordPolicy { history: 2, ..p };
        assert_eq!(
            two.check_history("second password!", &hashes),
            Err(PolicyError::Reused { history: 2 })
        );
        assert_eq!(two.check_history("first password!", &hashes), Ok(()));

        // History 0: no check at all.
        let none = PasswordPolicy { history: 0, ..p };
        assert_eq!(none.check_history("third password!", &hashes), Ok(()));

        // A damaged stored hash is skipped, not a reason to refuse.
        let damaged = vec!["not a phc string".to_owned(), hashes[0].clone()];
        assert_eq!(
            p.check_history("third password!", &damaged),
            Err(PolicyError::Reused { history: 3 })
        );
        assert_eq!(p.check_history("another new one!", &damaged), Ok(()));
    }

    #[test]
    fn common_list_is_sorted_and_has_no_comments() {
        let list = common_passwords();
        assert!(list.len() > 50_000, "{}", list.len());
        assert!(
            list.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for entry in list {
            assert!(!entry.starts_with('#'), "{entry}");
            assert!(entry.len() >= MIN_ALLOWED_CHARS, "{entry}");
            assert!(
                entry
                    .bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && !b.is_ascii_uppercase()),
                "{entry}"
            );
        }
        // The file itself is generated sorted, so the parse-time sort is only a safeguard.
        let raw: Vec<&str> = COMMON_PASSWORDS_TEXT
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(raw, list);
        assert!(COMMON_PASSWORDS_TEXT.starts_with("# "));
        assert!(
            COMMON_PASSWORDS_TEXT.len() < 1_100_000,
            "{}",
            COMMON_PASSWORDS_TEXT.len()
        );
    }
}

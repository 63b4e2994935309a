//! Operator passwords: the policy a new password must meet, argon2id hashing in PHC strings,
//! and verification.
//!
//! The policy is a struct so that a later issue can add rules (breached-password lists,
//! character classes) without touching the callers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::{OsRng, RngCore};

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
}

/// Rules for new passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values).
    pub min_chars: usize,
    /// Most bytes (UTF-8).
    pub max_bytes: usize,
}

impl PasswordPolicy {
    /// The relay's current policy.
    pub const DEFAULT: PasswordPolicy = PasswordPolicy {
        min_chars: 12,
        max_bytes: 1024,
    };

    /// Checks a new password for account `user`.
    pub fn check(&self, user: &str, password: &str) -> Result<(), PolicyError> {
        if password.chars().count() < self.min_chars {
            return Err(PolicyError::TooShort {
                min: self.min_chars,
            });
        }
        if password.len() > self.max_bytes {
            return Err(PolicyError::TooLong {
                max: self.max_bytes,
            });
        }
        if password.to_lowercase() == user.to_lowercase() {
            return Err(PolicyError::SameAsUserName);
        }
        Ok(())
    }
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
}

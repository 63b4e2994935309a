//! The one canonical form of an account name typed at login, used for everything that follows:
//! the account lookup, every brute-force counter, the directory, and the certificate.
//!
//! Without it, spellings that the database or the directory treat as the same person (letter
//! case, a trailing space that an LDAP filter ignores) would be different names to the
//! counters, so each variant would get its own lockout, and a variant that the directory
//! accepts would be certified as typed, apart from the relay account that carries the
//! disabled flag and the narrowed permissions.
//!
//! The rule is strict ASCII, the same as [`users::validate_name`]: surrounding white space is
//! removed, what is left must follow the naming rule, and letters are lower-cased (account
//! lookups already ignore case). Anything else, full-width or other look-alike letters
//! included, is not a name: the login is refused before any directory sees it.

use crate::accounts::users;

/// A name typed at login in its canonical form: trimmed, valid, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountName(String);

impl AccountName {
    /// The canonical form of `typed`, or `None` when it cannot be an account name.
    pub fn parse(typed: &str) -> Option<Self> {
        let trimmed = typed.trim();
        users::validate_name(trimmed).ok()?;
        Some(Self(trimmed.to_ascii_lowercase()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(typed: &str) -> Option<String> {
        AccountName::parse(typed).map(|n| n.as_str().to_string())
    }

    #[test]
    fn variants_of_one_name_are_one_name() {
        for typed in [
            "alice",
            "Alice",
            "ALICE",
            " alice",
            "alice ",
            "\talice\n",
            "aLiCe  ",
        ] {
            assert_eq!(canonical(typed).as_deref(), Some("alice"), "{typed:?}");
        }
        assert_eq!(
            canonical(" A_b-c@Example.ORG ").as_deref(),
            Some("a_b-c@example.org")
        );
    }

    #[test]
    fn what_cannot_be_a_name_is_refused() {
        for typed in [
            "",
            "   ",
            "al ice",
            "alice)(uid=*",
            "*",
            "alice,ou=people",
            // Full-width letters (NFKC would fold them to "alice"): refused, not folded.
            "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
            "ålice",
            "alice\u{200b}",
            &"x".repeat(65),
        ] {
            assert_eq!(canonical(typed), None, "{typed:?}");
        }
        // 64 characters plus white space is still a name.
        assert!(canonical(&format!(" {} ", "x".repeat(64))).is_some());
    }
}

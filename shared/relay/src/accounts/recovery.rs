//! One-time recovery codes: the way in for an operator who has lost the TOTP device.
//!
//! A code is 80 random bits written as 16 characters of Crockford's base32 alphabet in lower
//! case (digits and letters without i, l, o and u, so nothing reads as something else), grouped
//! `xxxx-xxxx-xxxx-xxxx`. Input is forgiving: letter case, dashes and spaces do not matter, and
//! the look-alikes `i`/`l` (read as `1`) and `o` (read as `0`) are accepted.
//!
//! The database keeps only [`hash`]es. They are single SHA-256 hashes, not argon2: a slow
//! password hash exists to make guessing low-entropy, human-chosen secrets expensive, but a
//! recovery code has 80 bits of entropy from the operating system's generator, so even an
//! attacker with the database and unlimited fast hashing cannot search 2^80 candidates. A slow
//! hash would add nothing there, while costing an argon2 run for each of an account's stored
//! codes on every recovery attempt. No salt is needed either: the codes are random and unique,
//! so precomputed tables cannot cover them; a domain-separation label keeps the hashes
//! distinct from any other SHA-256 use of the same text.

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

/// Recovery codes issued to an account at a time.
pub const COUNT: usize = 10;

/// Characters in a code, without the dashes.
pub const CODE_CHARS: usize = 16;

/// Crockford's base32 alphabet in lower case: no i, l, o or u.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Prefixed to the normalised code before hashing.
const HASH_LABEL: &[u8] = b"sightline-relay recovery code v1\0";

/// `count` fresh codes, each of 80 random bits, formatted `xxxx-xxxx-xxxx-xxxx`, all distinct.
pub fn generate(count: usize) -> Vec<Zeroizing<String>> {
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(count);
    while codes.len() < count {
        let code = generate_one();
        // A repeat within one batch (chance about count^2 / 2^81) is simply drawn again.
        if !codes.iter().any(|c| **c == *code) {
            codes.push(code);
        }
    }
    codes
}

fn generate_one() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 10]);
    OsRng.fill_bytes(bytes.as_mut());
    // 80 bits as a big-endian number, 5 bits per character.
    let mut value = Zeroizing::new(
        bytes
            .iter()
            .fold(0u128, |acc, &b| (acc << 8) | u128::from(b)),
    );
    let mut chars = Zeroizing::new([0u8; CODE_CHARS]);
    for slot in chars.iter_mut().rev() {
        *slot = ALPHABET[(*value & 31) as usize];
        *value >>= 5;
    }
    let mut code = Zeroizing::new(String::with_capacity(CODE_CHARS + 3));
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(c));
    }
    code
}

/// The canonical form of a typed recovery code: its 16 characters in lower case without dashes
/// or spaces, with `i`/`l` read as `1` and `o` as `0`. None when `input` cannot be a code
/// (wrong length, or a character outside the alphabet).
pub fn normalise(input: &str) -> Option<String> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_CHARS));
    for c in input.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let c = match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == CODE_CHARS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then(|| (*out).clone())
}

/// Whether `input` has the shape of a recovery code (rather than, say, a 6-digit TOTP code).
pub fn looks_like_recovery_code(input: &str) -> bool {
    normalise(input).is_some()
}

/// The hash to store for a code: hex SHA-256 of a domain-separation label and the normalised
/// code. None when `code` is not a recovery code.
pub fn hash(code: &str) -> Option<String> {
    let normalised = Zeroizing::new(normalise(code)?);
    let mut hasher = Sha256::new();
    hasher.update(HASH_LABEL);
    hasher.update(normalised.as_bytes());
    Some(hex::encode(hasher.finalize()))
}

/// The id of the stored code that `input` is, given the account's unused codes as `(id, hash)`
/// pairs. Every stored hash is compared in constant time, with no early exit, so the timing
/// does not tell which code (if any) matched.
pub fn find_match(input: &str, stored: &[(i64, String)]) -> Option<i64> {
    let candidate = hash(input)?;
    let mut found = subtle::Choice::from(0);
    let mut found_id = 0i64;
    for (id, stored_hash) in stored {
        let eq = candidate.as_bytes().ct_eq(stored_hash.as_bytes());
        found |= eq;
        found_id.conditional_assign(id, eq);
    }
    bool::from(found).then_some(found_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_codes_have_the_format() {
        let codes = generate(COUNT);
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 19, "{}", **code);
            for (i, c) in code.chars().enumerate() {
                if i % 5 == 4 {
                    assert_eq!(c, '-', "{}", **code);
                } else {
                    assert!(ALPHABET.contains(&(c as u8)), "{}", **code);
                    assert!(!"ilou".contains(c));
                }
            }
            assert!(looks_like_recovery_code(code));
            assert_eq!(normalise(code).unwrap(), code.replace('-', ""));
        }
        assert!(generate(0).is_empty());
    }

    #[test]
    fn generated_codes_are_unique_and_use_the_whole_alphabet() {
        let codes = generate(1000);
        let set: HashSet<&str> = codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(set.len(), 1000);
        let used: HashSet<char> = codes.iter().flat_map(|c| c.chars()).collect();
        // 16,000 characters: every one of the 32 symbols (plus '-') appears.
        assert_eq!(used.len(), 33);
        // The first character carries full 5 bits too (80 = 16 * 5, no short leading digit).
        let first: HashSet<char> = codes.iter().filter_map(|c| c.chars().next()).collect();
        assert!(first.len() > 25, "{}", first.len());
    }

    #[test]
    fn normalisation_is_forgiving_but_exact() {
        let canonical = "0123456789abcdef";
        for typed in [
            "0123-4567-89ab-cdef",
            "0123 4567 89AB CDEF",
            "  0123456789abcdef\n",
            "O123-4567-89AB-CDEF",
            "o123-4567-89ab-cdef",
        ] {
            assert_eq!(normalise(typed).as_deref(), Some(canonical), "{typed:?}");
        }
        assert_eq!(
            normalise("iL00-0000-0000-0000").as_deref(),
            Some("1100000000000000")
        );
        for bad in [
            "",
            "123456",
            "0123-4567-89ab-cde",
            "0123-4567-89ab-cdef0",
            "0123-4567-89ab-cdeu",
            "0123-4567-89ab-cde!",
            "0123-4567-89ab-cdé1",
            "0123_4567_89ab_cdef",
            "ｏ123456789abcdef",
        ] {
            assert_eq!(normalise(bad), None, "{bad:?}");
            assert!(!looks_like_recovery_code(bad), "{bad:?}");
        }
        // A TOTP code is never taken for a recovery code.
        assert!(!looks_like_recovery_code("081804"));
        assert!(!looks_like_recovery_code(" 081804 "));
    }

    #[test]
    fn hash_is_stable_and_separated() {
        let h = hash("0123-4567-89ab-cdef").unwrap();
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(hash("0123 4567 89AB CDEF").unwrap(), h);
        assert_eq!(hash("O123456789abcdef").unwrap(), h);
        assert_ne!(hash("0123-4567-89ab-cdeg").unwrap(), h);
        // Not the bare SHA-256 of the code: the label is part of the input.
        assert_ne!(h, hex::encode(Sha256::digest(b"0123456789abcdef")));
        assert_eq!(hash("not a code"), None);
    }

    #[test]
    fn find_match_finds_the_right_id() {
        let codes = generate(COUNT);
        let stored: Vec<(i64, String)> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (100 + i as i64, hash(c).unwrap()))
            .collect();
        for (i, code) in codes.iter().enumerate() {
            assert_eq!(find_match(code, &stored), Some(100 + i as i64));
            assert_eq!(
                find_match(&code.to_uppercase().replace('-', " "), &stored),
                Some(100 + i as i64)
            );
        }
        // Another, valid-looking code is no match.
        let other = generate(1).remove(0);
        assert_eq!(find_match(&other, &stored), None);
        // A used code (removed from the stored list) no longer matches.
        assert_eq!(find_match(&codes[3], &[stored[0].clone()]), None);
        assert_eq!(find_match(&codes[0], &[]), None);
        // Id 0 and negative ids work like any other.
        assert_eq!(find_match(&codes[0], &[(0, stored[0].1.clone())]), Some(0));
        assert_eq!(
            find_match(&codes[0], &[(-7, stored[0].1.clone())]),
            Some(-7)
        );
    }

    #[test]
    fn garbage_input_never_matches() {
        let codes = generate(3);
        let mut stored: Vec<(i64, String)> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (i as i64, hash(c).unwrap()))
            .collect();
        // Damaged rows: empty, short, non-hex.
        stored.push((90, String::new()));
        stored.push((91, "abc".to_owned()));
        stored.push((92, "z".repeat(64)));
        for garbage in [
            "",
            "-",
            "081804",
            "\u{0}",
            "💥💥💥💥",
            "0123-4567-89ab-cdef-0123",
            &"a".repeat(10_000),
        ] {
            assert_eq!(find_match(garbage, &stored), None, "{garbage:?}");
        }
        assert_eq!(find_match(&codes[1], &stored), Some(1));
    }
}

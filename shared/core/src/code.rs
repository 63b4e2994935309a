//! One-time session codes: ten decimal digits from a CSPRNG, shown grouped `123 456 7890`.

use rand_core::RngCore;
use std::fmt;
use std::str::FromStr;

const SPACE: u64 = 10_000_000_000;

/// A ten-digit session code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionCode(u64);

impl SessionCode {
    /// Draws a uniformly distributed code (rejection sampling, no modulo bias).
    pub fn generate(rng: &mut impl RngCore) -> Self {
        // Largest multiple of SPACE that fits in u64.
        let zone = u64::MAX - (u64::MAX % SPACE);
        loop {
            let v = rng.next_u64();
            if v < zone {
                return Self(v % SPACE);
            }
        }
    }

    /// The ten digits without grouping, as sent on the wire.
    pub fn digits(&self) -> String {
        format!("{:010}", self.0)
    }

    /// Grouped for reading aloud: `123 456 7890`.
    pub fn grouped(&self) -> String {
        let d = self.digits();
        format!("{} {} {}", &d[0..3], &d[3..6], &d[6..10])
    }
}

impl fmt::Display for SessionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

impl fmt::Debug for SessionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Codes are secrets while valid; logs must not carry them.
        f.write_str("SessionCode(..)")
    }
}

/// A string that is not a ten-digit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session code is ten digits, for example 123 456 7890")]
pub struct BadCode;

impl FromStr for SessionCode {
    type Err = BadCode;
    /// Accepts the digits with optional spaces or dashes between them.
    fn from_str(s: &str) -> Result<Self, BadCode> {
        let mut value: u64 = 0;
        let mut count = 0;
        for c in s.trim().chars() {
            match c {
                '0'..='9' => {
                    count += 1;
                    if count > 10 {
                        return Err(BadCode);
                    }
                    value = value * 10 + u64::from(c as u8 - b'0');
                }
                ' ' | '-' => {}
                _ => return Err(BadCode),
            }
        }
        if count == 10 {
            Ok(Self(value))
        } else {
            Err(BadCode)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn formats_and_parses() {
        let c: SessionCode = "012 345 6789".parse().unwrap_or(SessionCode(1));
        assert_eq!(c.digits(), "0123456789");
        assert_eq!(c.grouped(), "012 345 6789");
        assert_eq!("0123456789".parse::<SessionCode>(), Ok(c));
        assert_eq!("012-345-6789".parse::<SessionCode>(), Ok(c));
        assert_eq!("123".parse::<SessionCode>(), Err(BadCode));
        assert_eq!("12345678901".parse::<SessionCode>(), Err(BadCode));
        assert_eq!("12345a7890".parse::<SessionCode>(), Err(BadCode));
        assert_eq!(format!("{c:?}"), "SessionCode(..)");
    }

    #[test]
    fn generated_codes_are_ten_digits_and_vary() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
        let codes: std::collections::HashSet<_> = (0..1000)
            .map(|_| SessionCode::generate(&mut rng).digits())
            .collect();
        assert_eq!(codes.len(), 1000);
        assert!(codes.iter().all(|c| c.len() == 10));
    }
}

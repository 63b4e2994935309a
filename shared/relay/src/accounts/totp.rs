//! The TOTP second factor (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, as every
//! authenticator app supports.
//!
//! The HOTP/TOTP arithmetic and the `otpauth://` URI come from the `totp-rs` crate; this module
//! adds the secret's handling (random generation, zeroizing, redacted `Debug`), a terminal QR
//! code for enrolment, and verification with one step of clock skew either way, constant-time
//! comparison and replay protection (the caller stores the last accepted step per account).

use std::fmt;

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use rand_core::{OsRng, RngCore};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use totp_rs::{Algorithm, TOTP};
use zeroize::{Zeroize, Zeroizing};

/// Digits in a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Steps of clock skew accepted either way.
pub const SKEW_STEPS: u64 = 1;
/// Bytes in a newly generated secret (160 bits, the size RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Fewest bytes accepted in a secret (128 bits, RFC 4226's minimum).
pub const MIN_SECRET_BYTES: usize = 16;

/// Errors from setting up TOTP. The texts are shown to the administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("TOTP secret too short: {got} bytes, at least {min} needed")]
    SecretTooShort {
        /// The minimum.
        min: usize,
        /// The length given.
        got: usize,
    },
    /// The issuer or account name contains ':', which authenticator apps split the label on.
    #[error("the TOTP {field} must not contain ':' (authenticator apps split the label on it)")]
    ColonInLabel {
        /// "issuer" or "account name".
        field: &'static str,
    },
    /// The text does not fit in a QR code.
    #[error("cannot draw the QR code: {0}")]
    Qr(String),
}

/// A TOTP shared secret. Zeroized on drop; `Debug` does not show it.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// A fresh secret of [`SECRET_BYTES`] random bytes from the operating system.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps stored secret bytes; refuses fewer than [`MIN_SECRET_BYTES`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TotpError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TotpError::SecretTooShort {
                min: MIN_SECRET_BYTES,
                got: bytes.len(),
            });
        }
        Ok(Self(bytes))
    }

    /// The raw secret bytes (what the database stores).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in RFC 4648 base32 without padding, as authenticator apps expect it typed in.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(Engine::new(self, None, String::new()).0.get_secret_base32())
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// A `totp_rs::TOTP` holding a copy of the secret, which it does not zeroize itself (its
/// `zeroize` feature is off); this wrapper wipes the copy on drop.
struct Engine(TOTP);

impl Engine {
    fn new(secret: &TotpSecret, issuer: Option<String>, account: String) -> Self {
        // `new_unchecked`: the secret length is checked by `TotpSecret`, the digits are fixed,
        // and callers check the labels for ':' themselves.
        Self(TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            // totp-rs's own skew (used only by its `check`, which this module does not call).
            SKEW_STEPS as u8,
            STEP_SECS,
            secret.as_bytes().to_vec(),
            issuer,
            account,
        ))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.0.secret.zeroize();
    }
}

/// The `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`
/// URI that authenticator apps enrol from (usually as a QR code), percent-encoded. Issuer and
/// account may contain spaces but not ':'. The URI contains the secret.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> Result<String, TotpError> {
    if issuer.contains(':') {
        return Err(TotpError::ColonInLabel { field: "issuer" });
    }
    if account.contains(':') {
        return Err(TotpError::ColonInLabel {
            field: "account name",
        });
    }
    let engine = Engine::new(secret, Some(issuer.to_owned()), account.to_owned());
    // totp-rs leaves out parameters that equal the defaults; some apps want them spelled out.
    let mut uri = engine.0.get_url();
    uri.push_str(&format!(
        "&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    ));
    Ok(uri)
}

/// `text` as a QR code drawn with Unicode half blocks (two modules per character cell), with
/// the standard quiet zone of four modules, for printing to a terminal.
pub fn qr_for_terminal(text: &str) -> Result<String, TotpError> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| TotpError::Qr(e.to_string()))?;
    let image = code.render::<Dense1x2>().quiet_zone(true).build();
    // Phone cameras expect dark modules on a light background, and many scanners do not read
    // an inverted code. Block characters are drawn in the terminal's foreground colour, which
    // is light on a dark terminal and dark on a light one, so neither the plain rendering nor
    // an inverted one is right everywhere. Each line is therefore coloured explicitly: black
    // foreground (the dark modules, drawn as blocks) on a white background (the light modules
    // and the quiet zone, drawn as spaces). The colours are the 256-colour palette's fixed
    // black (16) and white (231), which colour themes leave alone, unlike the 16 basic colours
    // that themes such as Solarized remap. Each line ends with a reset, so the colour does not
    // bleed into the rest of the line or the prompt.
    const DARK_ON_LIGHT: &str = "\x1b[38;5;16;48;5;231m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(image.len() * 2);
    for line in image.lines() {
        out.push_str(DARK_ON_LIGHT);
        out.push_str(line);
        out.push_str(RESET);
        out.push('\n');
    }
    Ok(out)
}

/// The code for the time step containing `unix_time`: [`DIGITS`] digits, zero-padded.
pub fn code_at(secret: &TotpSecret, unix_time: u64) -> String {
    Engine::new(secret, None, String::new())
        .0
        .generate(unix_time)
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// The code is right for `step` (a time step number: seconds since the epoch divided by
    /// [`STEP_SECS`]); store it as the account's last used step.
    Accepted {
        /// The matched step.
        step: u64,
    },
    /// The code is right, but for a step at or before the last used one: a replay.
    Reused,
    /// The code is wrong or malformed.
    Wrong,
}

/// Checks `code` (six ASCII digits; surrounding whitespace is ignored) at time `now` (seconds
/// since the epoch), allowing [`SKEW_STEPS`] of clock difference either way.
/// `last_used_step` is the step of the account's last accepted code: a code for that step or
/// an earlier one is [`TotpCheck::Reused`], so no code works twice.
///
/// Every candidate step's code is computed and compared in constant time, with no early exit,
/// so the timing does not tell which step matched. If a code happens to be right for more than
/// one step, the latest counts.
pub fn verify(secret: &TotpSecret, code: &str, now: u64, last_used_step: Option<u64>) -> TotpCheck {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return TotpCheck::Wrong;
    }
    let engine = Engine::new(secret, None, String::new());
    let current = now / STEP_SECS;
    let first = current.saturating_sub(SKEW_STEPS);
    let last = current.saturating_add(SKEW_STEPS);
    let mut matched = subtle::Choice::from(0);
    let mut matched_step = 0u64;
    for step in first..=last {
        let expected = Zeroizing::new(engine.0.generate(step.saturating_mul(STEP_SECS)));
        let eq = expected.as_bytes().ct_eq(code.as_bytes());
        matched |= eq;
        matched_step.conditional_assign(&step, eq);
    }
    if !bool::from(matched) {
        return TotpCheck::Wrong;
    }
    match last_used_step {
        Some(used) if matched_step <= used => TotpCheck::Reused,
        _ => TotpCheck::Accepted { step: matched_step },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        let vectors: [(u64, &str); 6] = [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ];
        let secret = rfc_secret();
        // totp-rs with 8 digits reproduces the appendix exactly.
        let eight = TOTP::new_unchecked(
            Algorithm::SHA1,
            8,
            1,
            30,
            b"12345678901234567890".to_vec(),
            None,
            String::new(),
        );
        for (time, expected8) in vectors {
            assert_eq!(eight.generate(time), expected8, "8 digits at {time}");
            // Dynamic truncation takes the value mod 10^digits, so the 6-digit code is the
            // 8-digit one mod 10^6: its last six digits.
            let value8: u32 = expected8.parse().unwrap();
            let expected6 = format!("{:06}", value8 % 1_000_000);
            assert_eq!(expected6, expected8[2..]);
            assert_eq!(code_at(&secret, time), expected6, "6 digits at {time}");
            assert_eq!(
                verify(&secret, &expected6, time, None),
                TotpCheck::Accepted { step: time / 30 }
            );
        }
    }

    /// `oathtool --totp` (oath-toolkit; `./dev` installs it). A missing oathtool fails the
    /// test: a comparison that is skipped proves nothing.
    fn oathtool(base32: &str, time: u64) -> String {
        let out = Command::new("oathtool")
            .args(["--totp", "-b", "-d", "6", "-N"])
            .arg(format!("@{time}"))
            .arg(base32)
            .output()
            .unwrap_or_else(|e| panic!("running oathtool (apt-get install oathtool): {e}"));
        assert!(out.status.success(), "oathtool: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn agrees_with_oathtool() {
        let mut checked = 0;
        for i in 0..8u64 {
            let secret = if i == 0 {
                rfc_secret()
            } else {
                TotpSecret::generate()
            };
            let mut t = [0u8; 8];
            OsRng.fill_bytes(&mut t);
            // Times up to about the year 2100, plus the epoch's first step.
            let time = if i == 1 {
                1
            } else {
                u64::from_le_bytes(t) % 4_102_444_800
            };
            let expected = oathtool(&secret.to_base32(), time);
            assert_eq!(code_at(&secret, time), expected, "time {time}");
            checked += 1;
        }
        assert_eq!(checked, 8);
    }

    #[test]
    fn secret_sizes_encoding_and_debug() {
        let s = TotpSecret::generate();
        assert_eq!(s.as_bytes().len(), SECRET_BYTES);
        assert_ne!(s.as_bytes(), TotpSecret::generate().as_bytes());
        // 20 bytes: 32 base32 characters, no padding.
        let b32 = s.to_base32();
        assert_eq!(b32.len(), 32);
        assert!(b32
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(
            *rfc_secret().to_base32(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        // 16 bytes: 26 characters, still no '=' padding.
        let s16 = TotpSecret::from_bytes(vec![7; 16]).unwrap();
        assert_eq!(s16.to_base32().len(), 26);
        assert!(!s16.to_base32().contains('='));
        assert_eq!(
            TotpSecret::from_bytes(vec![1; 15]).unwrap_err(),
            TotpError::SecretTooShort { min: 16, got: 15 }
        );
        assert!(TotpSecret::from_bytes(Vec::new()).is_err());
        let debug = format!("{s:?}");
        assert_eq!(debug, "TotpSecret(..)");
    }

    #[test]
    fn skew_of_one_step_either_way() {
        let s = TotpSecret::generate();
        let now = 1_700_000_015; // inside step 56_666_667
        let step = now / STEP_SECS;
        for delta in [-1i64, 0, 1] {
            let t = (now as i64 + delta * STEP_SECS as i64) as u64;
            assert_eq!(
                verify(&s, &code_at(&s, t), now, None),
                TotpCheck::Accepted {
                    step: (step as i64 + delta) as u64
                },
                "delta {delta}"
            );
        }
        for delta in [-2i64, 2, -3, 3] {
            let t = (now as i64 + delta * STEP_SECS as i64) as u64;
            let code = code_at(&s, t);
            // Skip the one-in-a-million case where the far code equals a near one.
            let near: Vec<String> = (-1..=1)
                .map(|d| code_at(&s, (now as i64 + d * 30) as u64))
                .collect();
            if near.contains(&code) {
                continue;
            }
            assert_eq!(
                verify(&s, &code, now, None),
                TotpCheck::Wrong,
                "delta {delta}"
            );
        }
        // Near the epoch there is no step before 0; no underflow.
        assert!(matches!(
            verify(&s, &code_at(&s, 0), 5, None),
            TotpCheck::Accepted { step: 0 }
        ));
    }

    #[test]
    fn codes_cannot_be_reused() {
        let s = TotpSecret::generate();
        let now = 1_800_000_000;
        let code = code_at(&s, now);
        let TotpCheck::Accepted { step } = verify(&s, &code, now, None) else {
            panic!("fresh code refused");
        };
        assert_eq!(step, now / 30);
        // The same code again, also a little later within the skew window.
        assert_eq!(verify(&s, &code, now, Some(step)), TotpCheck::Reused);
        assert_eq!(verify(&s, &code, now + 30, Some(step)), TotpCheck::Reused);
        // An older, still in-window code after a newer one was used.
        let older = code_at(&s, now - 30);
        if older != code {
            assert_eq!(verify(&s, &older, now, Some(step)), TotpCheck::Reused);
        }
        // The next step's code is fine.
        let next = code_at(&s, now + 30);
        assert_eq!(
            verify(&s, &next, now + 30, Some(step)),
            TotpCheck::Accepted { step: step + 1 }
        );
        // A wrong code stays wrong whatever the history.
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        if ![older, next].contains(&wrong) {
            assert_eq!(verify(&s, &wrong, now, Some(step)), TotpCheck::Wrong);
        }
    }

    #[test]
    fn malformed_codes_are_wrong() {
        let s = rfc_secret();
        let time = 1111111109;
        let good = code_at(&s, time);
        assert_eq!(good, "081804");
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            "081 804",
            "08180４",
            "+81804",
            "-81804",
            "0818044",
            "\u{0}81804",
        ] {
            assert_eq!(verify(&s, bad, time, None), TotpCheck::Wrong, "{bad:?}");
        }
        for padded in [" 081804 ", "081804\n", "\t081804"] {
            assert_eq!(
                verify(&s, padded, time, None),
                TotpCheck::Accepted { step: time / 30 },
                "{padded:?}"
            );
        }
    }

    #[test]
    fn otpauth_uri_round_trips() {
        let s = TotpSecret::generate();
        let uri = otpauth_uri(&s, "Sightline Relay", "alice operator").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Sightline%20Relay:alice%20operator?secret="),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", *s.to_base32())), "{uri}");
        assert!(uri.contains("&issuer=Sightline%20Relay"), "{uri}");
        assert!(uri.ends_with("&algorithm=SHA1&digits=6&period=30"), "{uri}");
        let parsed = TOTP::from_url(&uri).unwrap();
        assert_eq!(parsed.secret, s.as_bytes());
        assert_eq!(parsed.issuer.as_deref(), Some("Sightline Relay"));
        assert_eq!(parsed.account_name, "alice operator");
        assert_eq!(parsed.algorithm, Algorithm::SHA1);
        assert_eq!(parsed.digits, 6);
        assert_eq!(parsed.step, 30);
        assert_eq!(parsed.generate(1_750_000_000), code_at(&s, 1_750_000_000));

        let err = otpauth_uri(&s, "Sight:line", "alice").unwrap_err();
        assert_eq!(err, TotpError::ColonInLabel { field: "issuer" });
        assert!(
            err.to_string().contains("issuer must not contain ':'"),
            "{err}"
        );
        let err = otpauth_uri(&s, "Sightline", "a:lice").unwrap_err();
        assert!(err.to_string().contains("account name"), "{err}");
    }

    #[test]
    fn qr_renders_dark_on_light() {
        let s = TotpSecret::generate();
        let uri = otpauth_uri(&s, "Sightline Relay", "alice").unwrap();
        let qr = qr_for_terminal(&uri).unwrap();
        assert!(!qr.is_empty());
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 15, "{}", lines.len());
        for line in &lines {
            assert!(line.starts_with("\x1b[38;5;16;48;5;231m"), "{line:?}");
            assert!(line.ends_with("\x1b[0m"), "{line:?}");
        }
        // The quiet zone: the first and last rows are blank (light) cells only.
        let body = |l: &str| {
            l.trim_start_matches("\x1b[38;5;16;48;5;231m")
                .trim_end_matches("\x1b[0m")
                .to_owned()
        };
        assert!(body(lines[0]).chars().all(|c| c == ' '));
        assert!(body(lines[lines.len() - 1]).chars().all(|c| c == ' '));
        assert!(body(lines[3]).contains('█') || body(lines[3]).contains('▀'));
        // Far too much text for any QR code.
        assert!(matches!(
            qr_for_terminal(&"x".repeat(8000)),
            Err(TotpError::Qr(_))
        ));
    }
}

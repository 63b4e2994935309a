//! The help desk's policy file (`policy.toml` in the data directory, or `--policy FILE`): what
//! operators may do on customers' machines, how long a session may last, the password rules and
//! whether two-factor login is required, whether sessions are recorded and for whom
//! (`[recording]`, see [`recording`]), and how long stored records are kept (`[retention]`, see
//! [`crate::store::retention`]).
//!
//! Every key is optional with a documented default; unknown keys are refused, so a typo cannot
//! leave a weaker default in force. `assets/policy.example.toml` documents every key; keep the
//! two in step. Per-operator settings (`relay user set`) can only narrow what this file allows.

pub mod recording;

use crate::accounts::password::{PasswordPolicy, MIN_ALLOWED_CHARS};
use serde::Deserialize;
use sightline_core::cert::Permissions;
use std::path::{Path, PathBuf};

/// Errors reading the policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("cannot read policy {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML for the policy (syntax, unknown key, wrong type).
    #[error("invalid policy {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A value parses but makes no sense.
    #[error("invalid policy {path}: {key}: {reason}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Whether accounts must use a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwoFactorMode {
    /// Every account must log in with TOTP (or a recovery code); accounts cannot be created
    /// without it.
    Required,
    /// Accounts created with `--no-2fa` log in with a password alone; enrolled accounts still
    /// need their code.
    Optional,
}

/// `[permissions]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionsPolicy {
    /// What operators may do, by name (`view`, `control`, `clipboard`, `file-transfer`).
    pub allow: Vec<String>,
    /// Longest session, minutes.
    pub max_session_minutes: u64,
}

impl Default for PermissionsPolicy {
    fn default() -> Self {
        Self {
            allow: vec!["view".into(), "control".into()],
            max_session_minutes: 8 * 60,
        }
    }
}

/// `[password]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSection {
    /// Fewest characters.
    pub min_length: usize,
    /// Refuse passwords from the shipped list of common passwords.
    pub reject_common: bool,
    /// A new password may not be one of this many previous ones.
    pub history: usize,
}

impl Default for PasswordSection {
    fn default() -> Self {
        let d = PasswordPolicy::DEFAULT;
        Self {
            min_length: d.min_chars,
            reject_common: d.reject_common,
            history: d.history,
        }
    }
}

/// `[two_factor]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwoFactorSection {
    /// `required` or `optional`.
    pub mode: TwoFactorMode,
    /// The TOTP issuer shown in authenticator apps.
    pub issuer: String,
}

impl Default for TwoFactorSection {
    fn default() -> Self {
        Self {
            mode: TwoFactorMode::Required,
            issuer: "Sightline".into(),
        }
    }
}

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// What operators may do.
    pub permissions: PermissionsPolicy,
    /// Password rules.
    pub password: PasswordSection,
    /// Second factor.
    pub two_factor: TwoFactorSection,
    /// Session recording.
    pub recording: recording::RecordingSection,
    /// How long stored records are kept.
    pub retention: crate::store::retention::Retention,
}

/// Longest session a policy may allow, minutes (one day).
pub const MAX_SESSION_MINUTES: u64 = 24 * 60;
/// Longest password minimum a policy may ask for.
pub const MAX_MIN_LENGTH: usize = 128;
/// Most previous passwords a policy may remember.
pub const MAX_HISTORY: usize = 24;

impl Policy {
    /// Reads `explicit` if given (it must exist), else `default_path` if it exists, else the
    /// defaults. Returns the policy and the file used.
    pub fn load_or_default(
        explicit: Option<&Path>,
        default_path: &Path,
    ) -> Result<(Policy, Option<PathBuf>), PolicyFileError> {
        let path = match explicit {
            Some(p) => p,
            None if default_path.exists() => default_path,
            None => return Ok((Policy::default(), None)),
        };
        let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((Policy::parse(&text, path)?, Some(path.to_path_buf())))
    }

    /// Parses and checks policy text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyFileError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyFileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        policy.validate(path)?;
        Ok(policy)
    }

    fn validate(&self, path: &Path) -> Result<(), PolicyFileError> {
        let bad = |key, reason: String| {
            Err(PolicyFileError::Value {
                path: path.to_path_buf(),
                key,
                reason,
            })
        };
        for name in &self.permissions.allow {
            if Permissions::from_name(name).is_none() {
                return bad(
                    "permissions.allow",
                    format!(
                        "unknown permission {name:?}; use view, control, clipboard, file-transfer"
                    ),
                );
            }
        }
        let m = self.permissions.max_session_minutes;
        if m == 0 || m > MAX_SESSION_MINUTES {
            return bad(
                "permissions.max_session_minutes",
                format!("must be between 1 and {MAX_SESSION_MINUTES}"),
            );
        }
        let l = self.password.min_length;
        if !(MIN_ALLOWED_CHARS..=MAX_MIN_LENGTH).contains(&l) {
            return bad(
                "password.min_length",
                format!("must be between {MIN_ALLOWED_CHARS} and {MAX_MIN_LENGTH}"),
            );
        }
        if self.password.history > MAX_HISTORY {
            return bad(
                "password.history",
                format!("must be between 0 and {MAX_HISTORY}"),
            );
        }
        if let Some((key, reason)) = self.retention.problem() {
            return bad(key, reason);
        }
        if let Some((key, reason)) = self.recording.problem() {
            return bad(key, reason);
        }
        let issuer = &self.two_factor.issuer;
        if issuer.trim().is_empty() || issuer.contains(':') || issuer.chars().count() > 64 {
            return bad(
                "two_factor.issuer",
                "must be 1 to 64 characters without ':'".into(),
            );
        }
        Ok(())
    }

    /// What operators may do, help-desk wide.
    pub fn allowed(&self) -> Permissions {
        self.permissions
            .allow
            .iter()
            .filter_map(|n| Permissions::from_name(n))
            .fold(Permissions::NONE, Permissions::union)
    }

    /// Longest session, seconds.
    pub fn max_session_secs(&self) -> u64 {
        self.permissions.max_session_minutes.saturating_mul(60)
    }

    /// The password rules in force.
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_chars: self.password.min_length,
            reject_common: self.password.reject_common,
            history: self.password.history,
            ..PasswordPolicy::DEFAULT
        }
    }

    /// Whether every account needs a second factor.
    pub fn two_factor_required(&self) -> bool {
        self.two_factor.mode == TwoFactorMode::Required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyFileError> {
        Policy::parse(text, Path::new("policy.toml"))
    }

    #[test]
    fn defaults_and_example_agree() {
        let p = parse("").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.allowed(), Permissions::VIEW.union(Permissions::CONTROL));
        assert_eq!(p.max_session_secs(), 8 * 3600);
        assert!(p.two_factor_required());
        assert_eq!(p.password_policy(), PasswordPolicy::DEFAULT);
        let example = include_str!("../../../assets/policy.example.toml");
        assert_eq!(parse(example).unwrap(), Policy::default());
        // The commented example of a recipient is one.
        let shown = example
            .lines()
            .find_map(|l| l.strip_prefix("# recipients = "))
            .unwrap();
        let p = parse(&format!(
            "[recording]\nmode = \"optional\"\nrecipients = {shown}\n"
        ))
        .unwrap();
        assert_eq!(p.recording.recipients.len(), 1);
    }

    #[test]
    fn retention_keeps_forever_with_zero() {
        let p = parse("[retention]\naudit_days = 0\nsessions_days = 30\n").unwrap();
        assert_eq!(p.retention.audit_days, 0);
        assert_eq!(p.retention.sessions_days, 30);
        assert_eq!(p.retention.known_addresses_days, 90);
    }

    #[test]
    fn view_only_help_desk() {
        let p = parse("[permissions]\nallow = [\"view\"]\nmax_session_minutes = 30\n").unwrap();
        assert_eq!(p.allowed(), Permissions::VIEW);
        assert!(!p.allowed().allows(Permissions::CONTROL));
        assert_eq!(p.max_session_secs(), 1800);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[permissions]\nallow = [\"root\"]", "permissions.allow"),
            (
                "[permissions]\nmax_session_minutes = 0",
                "permissions.max_session_minutes",
            ),
            ("[password]\nmin_length = 6", "password.min_length"),
            ("[password]\nhistory = 100", "password.history"),
            ("[two_factor]\nissuer = \"a:b\"", "two_factor.issuer"),
            ("[retention]\nfailures_days = 0", "retention.failures_days"),
            ("[retention]\naudit_days = 36501", "retention.audit_days"),
        ] {
            match parse(text) {
                Err(PolicyFileError::Value { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = parse("[two_factor]\nmode = \"off\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse("[password]\nminimum = 3").unwrap_err().to_string();
        assert!(e.contains("unknown field `minimum`"), "{e}");
        let e = parse("[retention]\nrecording_days = 30")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `recording_days`"), "{e}");
        let e = parse("[recording]\nmode = \"always\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown recording mode \"always\""), "{e}");
        let e = parse("[recording]\nrecipient = []")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `recipient`"), "{e}");
    }

    #[test]
    fn recording_needs_valid_recipients() {
        let key = age::x25519::Identity::generate().to_public().to_string();
        let p = parse(&format!(
            "[recording]\nmode = \"required\"\nrecipients = [\"{key}\"]\ninclude_input = false\n"
        ))
        .unwrap();
        assert_eq!(
            p.recording.mode,
            sightline_core::cert::RecordingMode::Required
        );
        assert_eq!(p.recording.recipients, [key.as_str()]);
        assert!(!p.recording.include_input);
        for (text, key, says) in [
            (
                "[recording]\nmode = \"optional\"".to_string(),
                "recording.mode",
                "needs at least one recipient",
            ),
            (
                format!("[recording]\nrecipients = [\"{key}x\"]"),
                "recording.recipients",
                "not an age X25519 recipient",
            ),
        ] {
            match parse(&text) {
                Err(e @ PolicyFileError::Value { key: k, .. }) => {
                    assert_eq!(k, key, "{text}");
                    assert!(e.to_string().contains(says), "{e}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}

//! The operator's labels that a customer reads: display name and organisation. An operator,
//! an administrator or whoever edits the LDAP directory chooses them; the customer's terminal
//! and banner show them next to the verification code. Whoever controls them must not be able
//! to forge what the customer reads (see [`sightline_core::text`]).
//!
//! Two gates:
//!
//! - **At the door** ([`validate`]): `relay user add/set --display-name/--org` refuse a value
//!   that is empty, longer than [`MAX_DISPLAY_CHARS`], or that [`display_safe`] would change:
//!   escape sequences, control characters, line breaks, text-direction and invisible
//!   characters, spaces around it, tabs or runs of spaces. What is stored is what is shown.
//! - **When a certificate is issued** ([`for_certificate`]): whatever the source (a value stored
//!   before the door was this strict, an LDAP attribute, a future authenticator) goes through
//!   [`display_safe`], so nothing stored is rejected at login but nothing hostile is signed.
//!
//! The agent cleans the certificate's names once more before printing them.

use crate::accounts::auth::Authenticated;
use crate::accounts::users::User;
use sightline_core::text::display_safe;
use std::fmt;

pub use sightline_core::text::MAX_DISPLAY_CHARS;

/// Which label, for error messages (which name the command-line flag that sets it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// The name shown to customers (`--display-name`).
    DisplayName,
    /// The organisation shown to customers (`--org`).
    Organisation,
}

impl Label {
    /// The `relay user add/set` flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Label::DisplayName => "--display-name",
            Label::Organisation => "--org",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Label::DisplayName => "display name",
            Label::Organisation => "organisation",
        };
        write!(f, "{name} ({})", self.flag())
    }
}

/// What is wrong with a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Empty or only white space.
    Empty,
    /// More than [`MAX_DISPLAY_CHARS`] characters.
    TooLong,
    /// ESC or an 8-bit (C1) control: the start of a terminal escape sequence.
    Escape,
    /// A line feed, carriage return, vertical tab, form feed, line or paragraph separator.
    LineBreak,
    /// Another control character (tab included).
    Control,
    /// A bidirectional override, isolate or mark, or an invisible character (zero-width,
    /// soft hyphen, byte-order mark).
    DirectionOrInvisible,
    /// White space at the start or the end.
    Surrounding,
    /// White space other than single plain spaces between words.
    Spacing,
    /// Anything else that would not be shown exactly as given.
    NotPlain,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong => write!(f, "must be at most {MAX_DISPLAY_CHARS} characters"),
            Problem::Escape => f.write_str(
                "must not contain escape sequences (ESC or 8-bit control characters): they \
                 could recolour, move or clear what the customer reads",
            ),
            Problem::LineBreak => f.write_str(
                "must not contain line breaks: they could add a forged line to what the \
                 customer reads",
            ),
            Problem::Control => f.write_str("must not contain control characters (tabs included)"),
            Problem::DirectionOrInvisible => f.write_str(
                "must not contain text-direction or invisible characters (bidi overrides, \
                 zero-width characters): they make text read differently from what it is",
            ),
            Problem::Surrounding => f.write_str("must not start or end with spaces"),
            Problem::Spacing => f.write_str("must use single plain spaces between words"),
            Problem::NotPlain => f.write_str("cannot be shown to customers exactly as given"),
        }
    }
}

/// A label refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {label}: {problem}")]
pub struct LabelError {
    /// Which label.
    pub label: Label,
    /// What is wrong with it.
    pub problem: Problem,
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_escape(c: char) -> bool {
    c == '\u{1b}' || (('\u{80}'..='\u{9f}').contains(&c) && c != '\u{85}')
}

/// Whether [`display_safe`] drops `c` (a character that is neither a control nor white space
/// here: bidi controls and invisible characters).
fn dropped_when_shown(c: char) -> bool {
    let mut buf = [0u8; 4];
    display_safe(c.encode_utf8(&mut buf), MAX_DISPLAY_CHARS).is_empty()
}

/// Checks a display name or organisation given to `relay user add/set`: accepted only when it
/// is shown to customers exactly as given.
pub fn validate(label: Label, text: &str) -> Result<(), LabelError> {
    let problem = if text.trim().is_empty() {
        Some(Problem::Empty)
    } else if text.chars().count() > MAX_DISPLAY_CHARS {
        Some(Problem::TooLong)
    } else if text.chars().any(is_escape) {
        Some(Problem::Escape)
    } else if text.chars().any(is_line_break) {
        Some(Problem::LineBreak)
    } else if text.chars().any(char::is_control) {
        Some(Problem::Control)
    } else if text
        .chars()
        .any(|c| !c.is_whitespace() && dropped_when_shown(c))
    {
        Some(Problem::DirectionOrInvisible)
    } else if text.trim() != text {
        Some(Problem::Surrounding)
    } else if text.contains("  ") || text.chars().any(|c| c.is_whitespace() && c != ' ') {
        Some(Problem::Spacing)
    } else if display_safe(text, MAX_DISPLAY_CHARS) != text {
        Some(Problem::NotPlain)
    } else {
        None
    };
    match problem {
        Some(problem) => Err(LabelError { label, problem }),
        None => Ok(()),
    }
}

/// `text` as a certificate may carry it, or `None` when nothing showable is left.
pub fn clean(text: &str) -> Option<String> {
    let shown = display_safe(text, MAX_DISPLAY_CHARS);
    (!shown.is_empty()).then_some(shown)
}

/// What an operator certificate shows the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The display name: never empty.
    pub display_name: String,
    /// The organisation: empty when there is none.
    pub organisation: String,
}

/// The labels of a certificate for `person`, who logged in with the relay account `account`
/// (if any): the account's own label, else the authenticator's (LDAP attributes), else the
/// account name and no organisation. Each one is cleaned ([`display_safe`]); one that cleans
/// to nothing counts as unset, so the next source is used.
pub fn for_certificate(account: Option<&User>, person: &Authenticated) -> Shown {
    let first_clean = |own: Option<&str>, directory: Option<&str>| {
        own.and_then(clean).or_else(|| directory.and_then(clean))
    };
    let display_name = first_clean(
        account.and_then(|a| a.display_name.as_deref()),
        person.display_name.as_deref(),
    )
    // The account name follows `users::validate_name` (ASCII letters, digits, `._@-`), which
    // `display_safe` leaves as it is; cleaned all the same, as every shown string is.
    .unwrap_or_else(|| display_safe(&person.name, MAX_DISPLAY_CHARS));
    let organisation = first_clean(
        account.and_then(|a| a.organisation.as_deref()),
        person.organisation.as_deref(),
    )
    .unwrap_or_default();
    Shown {
        display_name,
        organisation,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::accounts::auth::Role;
    use crate::accounts::users::{Source, DEFAULT_PERMISSIONS};

    fn problem(label: &str) -> Option<Problem> {
        validate(Label::DisplayName, label).err().map(|e| e.problem)
    }

    #[test]
    fn plain_labels_are_accepted() {
        for ok in [
            "Alice Smith (Help Desk)",
            "Zoë Ångström",
            "李小龍",
            "O'Brien & Sons, Ltd.",
            "x",
            &"x".repeat(MAX_DISPLAY_CHARS),
        ] {
            assert_eq!(problem(ok), None, "{ok:?}");
            assert_eq!(clean(ok).as_deref(), Some(ok), "accepted is shown as given");
        }
    }

    #[test]
    fn disguises_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", Problem::Empty),
            ("  ", Problem::Empty),
            (&"x".repeat(MAX_DISPLAY_CHARS + 1) as &str, Problem::TooLong),
            ("\u{1b}[2J\u{1b}[31mEvil\u{1b}[0m", Problem::Escape),
            ("Bob\u{1b}]0;title\u{7}", Problem::Escape),
            ("a\u{9b}31mb", Problem::Escape),
            ("Mallory\nVerification code: 1234 5678", Problem::LineBreak),
            ("Mallory\r", Problem::LineBreak),
            ("a\u{2028}b", Problem::LineBreak),
            ("a\u{85}b", Problem::LineBreak),
            ("Carol\u{7}", Problem::Control),
            ("a\tb", Problem::Control),
            ("a\u{0}b", Problem::Control),
            ("Ali\u{202e}ce", Problem::DirectionOrInvisible),
            ("a\u{2066}b\u{2069}", Problem::DirectionOrInvisible),
            ("a\u{200b}b", Problem::DirectionOrInvisible),
            ("a\u{feff}", Problem::DirectionOrInvisible),
            (" Alice", Problem::Surrounding),
            ("Alice ", Problem::Surrounding),
            ("Alice  Smith", Problem::Spacing),
            ("Alice\u{a0}Smith", Problem::Spacing),
        ] {
            assert_eq!(problem(bad), Some(why), "{bad:?}");
        }
    }

    #[test]
    fn the_error_names_the_flag() {
        let e = validate(Label::Organisation, "Evil\nCorp").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("--org") && text.contains("line breaks"),
            "{text}"
        );
        let e = validate(Label::DisplayName, "\u{1b}[31mred").unwrap_err();
        assert!(e.to_string().contains("--display-name"), "{e}");
    }

    /// Whatever the door accepts, the certificate carries unchanged (checked over every
    /// character of the first planes that matter).
    #[test]
    fn the_door_accepts_only_what_is_shown_unchanged() {
        for code in (0u32..0x3100).chain(0xfe00..0x10000) {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let text = format!("a{c}b");
            if validate(Label::DisplayName, &text).is_ok() {
                assert_eq!(clean(&text).as_deref(), Some(text.as_str()), "U+{code:04X}");
            }
        }
    }

    #[test]
    fn account_names_are_shown_unchanged() {
        // Every character `users::validate_name` allows survives cleaning.
        let alphabet: String = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['.', '_', '@', '-'])
            .collect();
        assert_eq!(display_safe(&alphabet, alphabet.len()), alphabet);
        let longest = "x".repeat(crate::accounts::users::MAX_NAME_LEN);
        assert!(crate::accounts::users::validate_name(&longest).is_ok());
        assert_eq!(display_safe(&longest, MAX_DISPLAY_CHARS), longest);
    }

    fn person(display_name: Option<&str>, organisation: Option<&str>) -> Authenticated {
        Authenticated {
            name: "mallory".into(),
            display_name: display_name.map(str::to_string),
            organisation: organisation.map(str::to_string),
            role: Role::Operator,
        }
    }

    fn account(display_name: Option<&str>, organisation: Option<&str>) -> User {
        User {
            id: 1,
            name: "mallory".into(),
            display_name: display_name.map(str::to_string),
            organisation: organisation.map(str::to_string),
            password_hash: String::new(),
            role: Role::Operator,
            source: Source::Ldap,
            oidc: None,
            permissions: DEFAULT_PERMISSIONS,
            session_limit_secs: None,
            recording: None,
            disabled: false,
            two_factor: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn assert_plain(s: &str) {
        let hidden = |c: char| {
            c.is_control() || (c.is_whitespace() && c != ' ') || (c != ' ' && dropped_when_shown(c))
        };
        assert!(!s.chars().any(hidden), "{s:?}");
        assert!(s.chars().count() <= MAX_DISPLAY_CHARS, "{s:?}");
    }

    const HOSTILE_NAME: &str =
        "\u{1b}[2J\u{1b}[31mEvil\u{1b}[0m Mallory\nVerification code: 1234 5678";
    const HOSTILE_ORG: &str = "\u{202e}knaB\u{202c} \u{1b}]0;pwned\u{7}Corp\r\n";

    #[test]
    fn hostile_directory_attributes_are_cleaned() {
        let shown = for_certificate(None, &person(Some(HOSTILE_NAME), Some(HOSTILE_ORG)));
        assert_eq!(
            shown.display_name,
            "Evil Mallory Verification code: 1234 5678"
        );
        assert_eq!(shown.organisation, "knaB Corp");
        assert_plain(&shown.display_name);
        assert_plain(&shown.organisation);
    }

    #[test]
    fn hostile_stored_labels_are_cleaned_not_refused() {
        // Stored before the door was strict: cleaned at issue, the login goes on.
        let long = "Ä".repeat(128);
        let stored = account(Some(&long), Some("Help\u{200b}Desk\u{7}"));
        let shown = for_certificate(Some(&stored), &person(Some("Directory Name"), None));
        assert_eq!(shown.display_name.chars().count(), MAX_DISPLAY_CHARS);
        assert!(shown.display_name.ends_with("..."));
        assert_eq!(shown.organisation, "HelpDesk");
        assert_plain(&shown.display_name);
    }

    #[test]
    fn a_label_that_cleans_to_nothing_falls_back() {
        // The account's own label is only escapes: the directory's is used.
        let stored = account(Some("\u{1b}[2J"), Some("\u{202e}"));
        let shown = for_certificate(Some(&stored), &person(Some("Dir Name"), Some("Dir Org")));
        assert_eq!(shown.display_name, "Dir Name");
        assert_eq!(shown.organisation, "Dir Org");
        // Nothing showable anywhere: the account name, no organisation.
        let shown = for_certificate(
            Some(&stored),
            &person(Some("\u{1b}[0m\n\u{200b}"), Some("\r\n")),
        );
        assert_eq!(shown.display_name, "mallory");
        assert_eq!(shown.organisation, "");
        // The account's own clean label wins over the directory's.
        let stored = account(Some("Own Name"), None);
        let shown = for_certificate(Some(&stored), &person(Some("Dir Name"), Some("Dir Org")));
        assert_eq!(shown.display_name, "Own Name");
        assert_eq!(shown.organisation, "Dir Org");
    }
}

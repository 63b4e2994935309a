//! The operator's login secrets from the command line: the password and the second factor
//! (the 6-digit code from the authenticator app, or a one-time recovery code), read from two
//! lines of standard input (`--password-stdin`) or asked for on the terminal without echo.
//! Neither is ever logged or printed.

use sightline_core::relay_proto::Secret;
use std::io::BufRead;

/// Terminal prompt for the password.
pub const PASSWORD_PROMPT: &str = "Password: ";
/// Terminal prompt for the second factor.
pub const SECOND_FACTOR_PROMPT: &str = "Authenticator code (or a recovery code): ";

/// What the operator logs in with.
#[derive(Debug)]
pub struct Credentials {
    /// The password (never empty).
    pub password: Secret,
    /// The second factor; `None` for accounts without two-factor login.
    pub second_factor: Option<Secret>,
}

/// Why the secrets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The password line (or the prompt's answer) was empty.
    #[error("empty password")]
    EmptyPassword,
    /// Standard input could not be read.
    #[error("reading the {what} from stdin: {error}")]
    Stdin {
        /// "password" or "second factor".
        what: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// The terminal prompt failed (typically: there is no terminal).
    #[error("reading the {what} (use --password-stdin when there is no terminal): {error}")]
    Prompt {
        /// "password" or "second factor".
        what: &'static str,
        /// Why.
        error: std::io::Error,
    },
}

/// Reads `--password-stdin` input: the password is the first line, the second factor the
/// second line. A missing or blank second line means no second factor. Only line endings are
/// removed from the password (it may contain spaces); the second factor is trimmed.
pub fn read_from(mut input: impl BufRead) -> Result<Credentials, CredentialsError> {
    let password = read_secret_line(&mut input, "password")?;
    if password.expose().is_empty() {
        return Err(CredentialsError::EmptyPassword);
    }
    let second = read_secret_line(&mut input, "second factor")?;
    Ok(Credentials {
        password,
        second_factor: second_factor(second.expose()),
    })
}

/// Asks on the terminal for the password, then for the second factor, neither echoed (a
/// recovery code stays valid until used). An empty answer to the second means none.
pub fn prompt() -> Result<Credentials, CredentialsError> {
    let ask = |prompt: &str, what: &'static str| {
        rpassword::prompt_password(prompt)
            .map(Secret::new)
            .map_err(|error| CredentialsError::Prompt { what, error })
    };
    let password = ask(PASSWORD_PROMPT, "password")?;
    if password.expose().is_empty() {
        return Err(CredentialsError::EmptyPassword);
    }
    let second = ask(SECOND_FACTOR_PROMPT, "second factor")?;
    Ok(Credentials {
        password,
        second_factor: second_factor(second.expose()),
    })
}

/// The second factor as typed: surrounding white space removed, `None` when nothing is left.
pub fn second_factor(typed: &str) -> Option<Secret> {
    let code = typed.trim();
    (!code.is_empty()).then(|| Secret::new(code))
}

/// One line without its line ending; empty at end of input. The buffer is wrapped in a
/// [`Secret`] at once so that it is wiped when dropped.
fn read_secret_line(
    input: &mut impl BufRead,
    what: &'static str,
) -> Result<Secret, CredentialsError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|error| CredentialsError::Stdin { what, error })?;
    while line.ends_with(['\r', '\n']) {
        line.pop();
    }
    Ok(Secret::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str) -> Result<Credentials, CredentialsError> {
        read_from(input.as_bytes())
    }

    fn factor(c: &Credentials) -> Option<&str> {
        c.second_factor.as_ref().map(Secret::expose)
    }

    #[test]
    fn two_lines_give_password_and_second_factor() {
        let c = read("pw\n123456\n").expect("valid");
        assert_eq!(c.password.expose(), "pw");
        assert_eq!(factor(&c), Some("123456"));
        // Without the final newline, and with CRLF endings.
        let c = read("pw\r\n123456").expect("valid");
        assert_eq!(c.password.expose(), "pw");
        assert_eq!(factor(&c), Some("123456"));
    }

    #[test]
    fn missing_or_blank_second_line_means_none() {
        for input in ["pw\n", "pw", "pw\n\n", "pw\n   \n", "pw\r\n\r\n"] {
            let c = read(input).expect("valid");
            assert_eq!(c.password.expose(), "pw", "{input:?}");
            assert_eq!(factor(&c), None, "{input:?}");
        }
    }

    #[test]
    fn empty_password_is_refused() {
        for input in ["\n", "", "\n123456\n", "\r\n"] {
            let err = read(input).expect_err("empty");
            assert_eq!(err.to_string(), "empty password", "{input:?}");
        }
    }

    #[test]
    fn password_keeps_its_spaces_and_the_code_is_trimmed() {
        let c = read(" correct horse \n  ABCD-EFGH-1234 \n").expect("valid");
        assert_eq!(c.password.expose(), " correct horse ");
        assert_eq!(factor(&c), Some("ABCD-EFGH-1234"));
    }

    #[test]
    fn only_two_lines_are_read() {
        let mut input: &[u8] = b"pw\n123456\nrest\n";
        let c = read_from(&mut input).expect("valid");
        assert_eq!(factor(&c), Some("123456"));
        assert_eq!(input, b"rest\n");
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let c = read("hunter2hunter2\n987654\n").expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("987654"));
    }
}

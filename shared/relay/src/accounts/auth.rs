//! Password checking behind one trait, so that the relay's own accounts and an LDAP directory
//! are interchangeable parts of [`crate::accounts::login`]. Only password checks fit this trait; a
//! browser-based sign-in would need more than it offers.
//!
//! An authenticator answers one question: does this user name and password belong to a person
//! who may use the help desk, and in which role? The second factor, brute-force limits and
//! certificates stay in [`crate::accounts::login`], the same for every authenticator.

use sightline_core::relay_proto::Secret;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that [`Authenticator`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an account may do on the relay itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages accounts and policy; can also support customers.
    Admin,
    /// Supports customers.
    Operator,
}

impl Role {
    /// The name stored in the database and shown by `relay user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// Parses a stored or typed role name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person an authenticator vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The account name as the authenticator knows it.
    pub name: String,
    /// Name to show customers, when the authenticator knows one.
    pub display_name: Option<String>,
    /// Organisation to show customers, when the authenticator knows one.
    pub organisation: Option<String>,
    /// Role the authenticator grants.
    pub role: Role,
}

/// Why an authenticator said no. Only the relay's log sees this; the client gets one generic
/// answer for all of them, so that it cannot tell a wrong password from an unknown name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No such user.
    UnknownUser,
    /// The password is wrong.
    WrongPassword,
    /// The user exists but is in none of the groups allowed to log in.
    NotAuthorised,
    /// The account is disabled.
    Disabled,
}

impl Rejection {
    /// Text for the relay's log.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownUser => "unknown user",
            Rejection::WrongPassword => "wrong password",
            Rejection::NotAuthorised => "not in an allowed group",
            Rejection::Disabled => "account disabled",
        }
    }
}

/// The answer of an authenticator that could do its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right and the user may log in.
    Accepted(Authenticated),
    /// The user may not log in.
    Rejected(Rejection),
}

/// The authenticator could not decide (the directory is down, misconfigured or answered
/// nonsense). Not counted as a failed login, since the user did nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The service could not be reached or did not answer in time.
    #[error("the directory server cannot be reached: {0}")]
    Unavailable(String),
    /// The service answered in a way the relay cannot use (TLS failure, unexpected result).
    #[error("the directory server failed: {0}")]
    Failed(String),
}

/// A source of truth for passwords.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Short name for logs and `relay user show` (`local`, `ldap`).
    fn kind(&self) -> &'static str;

    /// Checks `password` for `user`. `user` already follows the relay's user-name rule
    /// ([`crate::accounts::users::validate_name`]), so it holds no filter or DN metacharacters except
    /// `.`, `_`, `@` and `-`.
    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        password: &'a Secret,
    ) -> BoxFuture<'a, Result<Verdict, AuthError>>;
}

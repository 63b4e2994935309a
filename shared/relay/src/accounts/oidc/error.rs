//! Why a sign-in with a provider did not give verified claims: words for the operator (no
//! secret and no token in them) and a short reason for the audit log.

/// Why a sign-in with the provider did not give verified claims. The words are for the
/// operator (no secret in them); [`OidcError::audit_reason`] is for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider (discovery, device or token endpoint) cannot be reached or answered
    /// nonsense.
    #[error("the identity provider {provider} cannot be reached: {detail}")]
    Unreachable {
        /// The table's name.
        provider: String,
        /// What failed.
        detail: String,
    },
    /// The operator did not finish in time, or refused in the browser.
    #[error("the sign-in at {provider} was not completed: {detail}")]
    NotCompleted {
        /// The table's name.
        provider: String,
        /// The provider's answer.
        detail: String,
    },
    /// The ID token did not verify: what is wrong with it.
    #[error("{0}")]
    BadToken(TokenProblem),
    /// The client secret file cannot be used.
    #[error("the relay's client secret for {provider} cannot be read: {detail}")]
    Secret {
        /// The table's name.
        provider: String,
        /// Why.
        detail: String,
    },
    /// The viewer's loopback redirect, or what it says the browser brought back to it, cannot
    /// be used (not a loopback address, a state from another sign-in, no code).
    #[error("the sign-in in the browser cannot be used: {0}")]
    BadRedirect(String),
    /// The viewer went away while the operator was signing in.
    #[error("the viewer disconnected")]
    Gone,
}

/// What is wrong with an ID token the provider's token endpoint sent. The values shown come
/// from the refused token (never verified, so shortened and quoted: see [`shown`]); none of
/// them is a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// The token endpoint's answer had no ID token.
    #[error(
        "the identity provider sent no ID token: ask your administrator to check that the \
         relay asks for the openid scope"
    )]
    Missing,
    /// `aud` does not name the relay's client id (or names others the relay does not trust).
    #[error(
        "the identity provider's token was issued for another application (audience {}), not \
         this relay (client_id {client_id:?}): ask your administrator to check client_id in the \
         relay's [[oidc]] table",
        list(.found)
    )]
    WrongAudience {
        /// The table's `client_id`.
        client_id: String,
        /// The token's `aud`, shown.
        found: Vec<String>,
    },
    /// `iss` is not the table's issuer.
    #[error(
        "the token was issued by {found}, not by the identity provider the relay trusts \
         ({expected:?}): ask your administrator to check issuer in the relay's [[oidc]] table"
    )]
    WrongIssuer {
        /// The table's `issuer`.
        expected: String,
        /// The token's `iss`, shown (or "no issuer").
        found: String,
    },
    /// The signature does not verify with any key of the provider's published JWKS (a key the
    /// provider does not publish, a signature that does not match, no signature).
    #[error(
        "the token's signature does not match any key the identity provider publishes: it was \
         not made by the provider; ask your administrator"
    )]
    BadSignature,
    /// Signed with an algorithm outside the table's `algorithms`.
    #[error(
        "the identity provider signed the token with {0}, an algorithm the relay does not \
         accept: ask your administrator to check algorithms in the relay's [[oidc]] table"
    )]
    DisallowedAlgorithm(String),
    /// `exp` is past by the relay's clock.
    #[error(
        "the identity provider's token has expired{}: check that the relay's and the \
         provider's clocks agree, and sign in again",
        .ago.map(|s| format!(" ({s} s ago by the relay's clock)")).unwrap_or_default()
    )]
    Expired {
        /// How long ago, when the token says.
        ago: Option<u64>,
    },
    /// The nonce is not the one the relay sent for this sign-in (or is absent): a token from
    /// another sign-in.
    #[error("the token does not belong to this sign-in (it may be replayed): sign in again")]
    Replayed,
    /// Anything else (unreadable claims, an unsupported token type, an ambiguous key).
    #[error("the identity provider's token was refused: {0}")]
    Other(String),
}

impl TokenProblem {
    /// A short reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            TokenProblem::Missing => "oidc token missing",
            TokenProblem::WrongAudience { .. } => "oidc token wrong audience",
            TokenProblem::WrongIssuer { .. } => "oidc token wrong issuer",
            TokenProblem::BadSignature => "oidc token bad signature",
            TokenProblem::DisallowedAlgorithm(_) => "oidc token algorithm not accepted",
            TokenProblem::Expired { .. } => "oidc token expired",
            TokenProblem::Replayed => "oidc token replayed",
            TokenProblem::Other(_) => "oidc token refused",
        }
    }
}

impl OidcError {
    /// A short reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            OidcError::Unreachable { .. } => "oidc provider unreachable",
            OidcError::NotCompleted { .. } => "oidc sign-in not completed",
            OidcError::BadToken(problem) => problem.audit_reason(),
            OidcError::Secret { .. } => "oidc client secret unusable",
            OidcError::BadRedirect(_) => "oidc redirect refused",
            OidcError::Gone => "oidc viewer disconnected",
        }
    }
}

/// A value from an unverified token as the operator may see it: quoted with escapes (no
/// control characters reach a terminal), at most 64 characters.
pub fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// Values already [`shown`], comma-separated: at most 3, then how many more.
fn list(values: &[String]) -> String {
    let mut text = match values.is_empty() {
        true => "none".to_owned(),
        false => values
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    };
    if values.len() > 3 {
        text.push_str(&format!(" and {} more", values.len() - 3));
    }
    text
}

/// An error with its causes, one after the other.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_problem_has_its_own_audit_reason_and_words() {
        let problems = [
            TokenProblem::Missing,
            TokenProblem::WrongAudience {
                client_id: "relay".into(),
                found: vec![shown("other-app")],
            },
            TokenProblem::WrongIssuer {
                expected: "https://a".into(),
                found: shown("https://b"),
            },
            TokenProblem::BadSignature,
            TokenProblem::DisallowedAlgorithm(shown("HS256")),
            TokenProblem::Expired { ago: Some(5) },
            TokenProblem::Replayed,
            TokenProblem::Other("x".into()),
        ];
        let reasons: std::collections::HashSet<_> =
            problems.iter().map(TokenProblem::audit_reason).collect();
        assert_eq!(reasons.len(), problems.len());
        for p in &problems {
            let e = OidcError::BadToken(p.clone());
            assert_eq!(e.audit_reason(), p.audit_reason());
            assert!(reasons.iter().all(|r| r.starts_with("oidc token ")));
            assert_eq!(e.to_string(), p.to_string());
        }
        let words = problems[1].to_string();
        assert!(
            words.contains(r#"another application (audience "other-app")"#),
            "{words}"
        );
        assert!(words.contains(r#"client_id "relay""#), "{words}");
        let words = problems[5].to_string();
        assert!(
            words.contains("has expired (5 s ago by the relay's clock)"),
            "{words}"
        );
        let words = TokenProblem::Expired { ago: None }.to_string();
        assert!(
            words.starts_with("the identity provider's token has expired: "),
            "{words}"
        );
    }

    #[test]
    fn values_from_a_token_are_quoted_and_short() {
        assert_eq!(shown("a\u{1b}[2Jb"), r#""a\u{1b}[2Jb""#);
        let long = shown(&"é".repeat(100));
        assert_eq!(long.chars().filter(|c| *c == 'é').count(), 64);
        assert!(long.ends_with("\"…"));
        let many: Vec<String> = ["a", "b", "c", "d", "e"].map(shown).to_vec();
        assert_eq!(list(&many), r#""a", "b", "c" and 2 more"#);
        assert_eq!(list(&[]), "none");
    }
}

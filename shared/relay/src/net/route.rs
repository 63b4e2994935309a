//! Which request a connection may make in which state, decided without I/O.
//!
//! A fresh connection may ask for a login challenge and log in (operator), join with a code
//! (agent), come back to a paired session with a resume token (either), or attach to a running
//! session to hand in its signed events (its operator). A logged-in operator may ask for a
//! session. Everything else is refused; a refusal that shows a confused or
//! hostile client also ends the connection.

use crate::net::replies;
use sightline_core::cert::OperatorCert;
use sightline_core::relay_proto::{
    AgentProof, ClientMessage, RelayMessage, ResumeToken, Secret, SessionId,
};

/// What the connection driver does with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Try an operator login.
    Login {
        /// Account name.
        user: String,
        /// Password.
        password: Secret,
        /// TOTP or recovery code.
        second_factor: Option<Secret>,
        /// Operator's public key (SPKI DER).
        operator_key: Vec<u8>,
        /// Proof of possession of the key (checked against this connection's challenge).
        proof: Vec<u8>,
    },
    /// Try an operator login through an OpenID Connect provider (device grant or browser).
    OidcLogin {
        /// The `[[oidc]]` table's name.
        provider: String,
        /// Operator's public key (SPKI DER).
        operator_key: Vec<u8>,
        /// Proof of possession of the key (checked against this connection's challenge).
        proof: Vec<u8>,
        /// Which grant.
        flow: OidcFlow,
    },
    /// Issue a fresh login challenge (replacing any earlier one on this connection).
    Challenge,
    /// Create a session for the logged-in operator.
    CreateSession,
    /// Join a session with a code.
    Join {
        /// The code as sent.
        code: String,
        /// The agent's key and proof, if it sent them.
        agent: Option<AgentProof>,
    },
    /// The operator of a running session attaches a second connection to hand in its events.
    Attach {
        /// The session.
        session_id: SessionId,
        /// The operator's certificate.
        certificate: OperatorCert,
        /// The operator's public key (SPKI DER).
        operator_key: Vec<u8>,
        /// Its signature over the attach transcript.
        proof: Vec<u8>,
    },
    /// Come back to a paired session whose connection broke.
    Resume {
        /// The session.
        session_id: SessionId,
        /// The side's resume token.
        token: ResumeToken,
    },
    /// Refuse with `reply`; close the connection afterwards if `close`.
    Refuse {
        /// The answer.
        reply: RelayMessage,
        /// Whether to end the connection.
        close: bool,
    },
}

/// Routes `msg` on a connection that is (`logged_in`) or is not logged in.
pub fn route(logged_in: bool, msg: ClientMessage) -> Route {
    match (logged_in, msg) {
        (
            false,
            ClientMessage::Login {
                user,
                password,
                second_factor,
                operator_key,
                proof,
            },
        ) => Route::Login {
            user,
            password,
            second_factor,
            operator_key,
            proof,
        },
        (
            false,
            ClientMessage::OidcLogin {
                provider,
                operator_key,
                proof,
            },
        ) => Route::OidcLogin {
            provider,
            operator_key,
            proof,
            flow: OidcFlow::Device,
        },
        (
            false,
            ClientMessage::OidcBrowserLogin {
                provider,
                operator_key,
                proof,
                redirect_uri,
            },
        ) => Route::OidcLogin {
            provider,
            operator_key,
            proof,
            flow: OidcFlow::Browser { redirect_uri },
        },
        (false, ClientMessage::LoginChallenge) => Route::Challenge,
        (false, ClientMessage::Join { code, agent }) => Route::Join { code, agent },
        (
            false,
            ClientMessage::Attach {
                session_id,
                certificate,
                operator_key,
                proof,
            },
        ) => Route::Attach {
            session_id,
            certificate,
            operator_key,
            proof,
        },
        (_, ClientMessage::SessionEvents { .. } | ClientMessage::RecordingChunk { .. }) => {
            Route::Refuse {
                reply: replies::bad_request("events and recordings need an attached connection"),
                close: true,
            }
        }
        (true, ClientMessage::Attach { .. }) => Route::Refuse {
            reply: replies::bad_request("attach on a fresh connection"),
            close: true,
        },
        (false, ClientMessage::Resume { session_id, token }) => Route::Resume { session_id, token },
        (false, ClientMessage::CreateSession) => Route::Refuse {
            reply: replies::not_logged_in(),
            close: false,
        },
        (true, ClientMessage::CreateSession) => Route::CreateSession,
        (
            true,
            ClientMessage::Login { .. }
            | ClientMessage::OidcLogin { .. }
            | ClientMessage::OidcBrowserLogin { .. }
            | ClientMessage::LoginChallenge,
        ) => Route::Refuse {
            reply: replies::bad_request("already logged in on this connection"),
            close: true,
        },
        (true, ClientMessage::Join { .. }) => Route::Refuse {
            reply: replies::bad_request("an operator connection cannot join a session"),
            close: true,
        },
        (true, ClientMessage::Resume { .. }) => Route::Refuse {
            reply: replies::bad_request("a logged-in connection cannot resume a session"),
            close: true,
        },
        // Only read while a browser sign-in waits for it (`oidc_login`).
        (_, ClientMessage::OidcRedirect { .. }) => Route::Refuse {
            reply: replies::bad_request("no sign-in in the browser is waiting on this connection"),
            close: true,
        },
    }
}

/// Which OpenID Connect grant an operator's login uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcFlow {
    /// The device authorization grant (RFC 8628): a page and a code to type, in any browser.
    Device,
    /// The authorization-code flow with PKCE in the viewer's system browser, which comes back
    /// to the viewer's loopback `redirect_uri` (RFC 8252).
    Browser {
        /// Where the provider sends the browser back.
        redirect_uri: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::relay_proto::RelayErrorKind;

    fn login() -> ClientMessage {
        ClientMessage::Login {
            user: "a".into(),
            password: Secret::new("p"),
            second_factor: None,
            operator_key: vec![1],
            proof: vec![2],
        }
    }

    fn refused(r: &Route) -> Option<(RelayErrorKind, bool)> {
        match r {
            Route::Refuse {
                reply: RelayMessage::Error { kind, .. },
                close,
            } => Some((*kind, *close)),
            _ => None,
        }
    }

    #[test]
    fn fresh_connection_may_log_in_or_join_only() {
        assert!(matches!(route(false, login()), Route::Login { .. }));
        assert_eq!(
            route(false, ClientMessage::LoginChallenge),
            Route::Challenge
        );
        assert_eq!(
            route(
                false,
                ClientMessage::Join {
                    code: "1".into(),
                    agent: None
                }
            ),
            Route::Join {
                code: "1".into(),
                agent: None
            }
        );
        let r = route(false, ClientMessage::CreateSession);
        assert_eq!(refused(&r), Some((RelayErrorKind::NotLoggedIn, false)));
    }

    #[test]
    fn logged_in_connection_may_only_create_sessions() {
        assert_eq!(
            route(true, ClientMessage::CreateSession),
            Route::CreateSession
        );
        assert_eq!(
            refused(&route(true, login())),
            Some((RelayErrorKind::BadRequest, true))
        );
        assert_eq!(
            refused(&route(true, ClientMessage::LoginChallenge)),
            Some((RelayErrorKind::BadRequest, true))
        );
        let r = route(
            true,
            ClientMessage::Join {
                code: "1".into(),
                agent: None,
            },
        );
        assert_eq!(refused(&r), Some((RelayErrorKind::BadRequest, true)));
        let resume = || ClientMessage::Resume {
            session_id: [1; 16],
            token: [2; 32],
        };
        assert_eq!(
            refused(&route(true, resume())),
            Some((RelayErrorKind::BadRequest, true))
        );
        assert_eq!(
            route(false, resume()),
            Route::Resume {
                session_id: [1; 16],
                token: [2; 32]
            }
        );
    }
}

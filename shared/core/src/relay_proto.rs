//! Control messages between a client (viewer or agent) and the relay, carried inside the
//! client↔relay Noise channel ([`crate::relay_channel`]).
//!
//! After [`RelayMessage::Paired`] the relay stops parsing the stream: from then on it carries
//! the end-to-end Noise session between viewer and agent, which the relay forwards unread.

use crate::authority::Authority;
use crate::cert::OperatorCert;
use crate::login_proof::Challenge;
use crate::revocation::RevocationList;
use crate::session_events::SignedEvent;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// Identifier of a relay session, bound into the end-to-end prologue.
pub type SessionId = [u8; 16];

/// A one-time resume token: lets one side of a paired session come back after its connection
/// broke ([`ClientMessage::Resume`]). Random, from the relay; each [`RelayMessage::Paired`]
/// brings a new one and the earlier one dies.
pub type ResumeToken = [u8; 32];

/// A secret string (password) that is wiped from memory when dropped and never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        drop(Zeroizing::new(std::mem::take(&mut self.0)));
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Requests from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Operator login, after [`ClientMessage::LoginChallenge`]; the relay answers with a
    /// certificate over `operator_key` once `proof` verifies and the factors are right.
    Login {
        /// Account name.
        user: String,
        /// Password.
        password: Secret,
        /// The second factor: a 6-digit code from the operator's authenticator app, or one of
        /// the account's one-time recovery codes. `None` only for accounts that have none.
        second_factor: Option<Secret>,
        /// The operator's RSA public key (SubjectPublicKeyInfo DER).
        operator_key: Vec<u8>,
        /// Proof of possession: the private half of `operator_key` signed this channel, the
        /// relay's challenge, the key and `user` ([`crate::login_proof::LoginTranscript`]).
        proof: Vec<u8>,
    },
    /// A logged-in operator asks for a session code.
    CreateSession,
    /// A customer's agent joins with a code.
    Join {
        /// The ten digits, without grouping.
        code: String,
        /// The agent's identity, proven on this channel: the key its signed session events
        /// will verify against. A client without one (a test, a tool) joins a session whose
        /// events the relay cannot accept.
        agent: Option<AgentProof>,
    },
    /// The operator of a running session, on a second connection, proves it is that
    /// operator ([`crate::session_proofs::AttachTranscript`]); afterwards the connection may
    /// hand in the session's signed events.
    Attach {
        /// The session.
        session_id: SessionId,
        /// The certificate issued at the login that created the session.
        certificate: OperatorCert,
        /// The operator's public key (SubjectPublicKeyInfo DER), the one the certificate
        /// names.
        operator_key: Vec<u8>,
        /// The operator key's signature over the attach transcript.
        proof: Vec<u8>,
    },
    /// On an attached connection: the next piece of the session's recording, ciphertext the
    /// relay stores unread. `offset` is where it starts in the recording file; a piece the
    /// relay already holds is acknowledged again, one that leaves a hole is refused. Empty
    /// `data` says the recording goes on with nothing new yet (sent at least every
    /// [`RECORDING_KEEPALIVE_SECS`]). `last`: the recording is complete.
    RecordingChunk {
        /// Byte offset in the recording file.
        offset: u64,
        /// Ciphertext, at most [`MAX_RECORDING_CHUNK`] bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// Nothing follows.
        last: bool,
    },
    /// Events the agent signed ([`crate::session_events`]), in the order received.
    SessionEvents {
        /// At most [`MAX_EVENTS_PER_MESSAGE`].
        events: Vec<SignedEvent>,
    },
    /// An operator about to log in asks for a fresh challenge to sign
    /// ([`RelayMessage::LoginChallenge`]).
    LoginChallenge,
    /// A side of a paired session whose connection broke comes back (within the relay's
    /// resume window) on a new connection. The relay answers [`RelayMessage::Paired`] with a
    /// fresh token once the other side is back too; then both ends resume the end-to-end
    /// session ([`crate::resume`]).
    Resume {
        /// The session.
        session_id: SessionId,
        /// The token from the last `Paired` this side received.
        token: ResumeToken,
    },
    /// Operator login through the relay's OpenID Connect provider `provider` with the device
    /// grant (after [`ClientMessage::LoginChallenge`]): the relay answers
    /// [`RelayMessage::OidcDevice`] (where the operator signs in), then `LoginOk` or an error
    /// once the sign-in ends. The proof covers `oidc:` and the provider's name as the user.
    OidcLogin {
        /// The `[[oidc]]` table's name.
        provider: String,
        /// The operator's public key (SubjectPublicKeyInfo DER).
        operator_key: Vec<u8>,
        /// The login proof ([`crate::login_proof`]).
        proof: Vec<u8>,
    },
    /// Operator login through the relay's OpenID Connect provider `provider` in the browser:
    /// the authorization-code flow with PKCE, the relay being the client, and the viewer's
    /// loopback redirect (RFC 8252). The relay answers [`RelayMessage::OidcBrowser`] (the page
    /// to open); the viewer sends [`ClientMessage::OidcRedirect`] once the browser comes back
    /// to `redirect_uri`; then `LoginOk` or an error. The proof is as for `OidcLogin`.
    OidcBrowserLogin {
        /// The `[[oidc]]` table's name.
        provider: String,
        /// The operator's public key (SubjectPublicKeyInfo DER).
        operator_key: Vec<u8>,
        /// The login proof ([`crate::login_proof`]).
        proof: Vec<u8>,
        /// The viewer's loopback redirect: `http://127.0.0.1:PORT/PATH` or
        /// `http://[::1]:PORT/PATH`.
        redirect_uri: String,
    },
    /// What the browser brought back to the viewer's loopback redirect: the query string as
    /// received (`code` and `state`, or the provider's `error`), for the relay to check.
    OidcRedirect {
        /// The request's query, without the `?`.
        query: String,
    },
}

/// What a proof of possession names as the user in an OpenID Connect login with `provider`.
pub fn oidc_login_user(provider: &str) -> String {
    format!("oidc:{provider}")
}

/// Why the relay refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayErrorKind {
    /// Wrong user name, password or second factor, or the account cannot log in. One kind
    /// for all of them, so that a guesser cannot tell which part was wrong.
    LoginFailed,
    /// The relay could not check the password (its directory server is unreachable); not
    /// counted as a failed login.
    AuthUnavailable,
    /// The request needs a logged-in operator.
    NotLoggedIn,
    /// The session code is unknown, already used or expired.
    CodeNotValid,
    /// Too many failures; retry later.
    RateLimited,
    /// The operator's code expired before anyone joined.
    CodeExpired,
    /// The request does not fit the connection's state.
    BadRequest,
    /// The relay is at capacity.
    Busy,
    /// An internal error on the relay.
    Internal,
    /// The session to resume is over: its resume window passed, the token is not valid, or
    /// the session ended for good.
    SessionEnded,
}

/// Most ciphertext in one [`ClientMessage::RecordingChunk`] (inside the relay's 64 KiB limit
/// on control messages).
pub const MAX_RECORDING_CHUNK: usize = 60 * 1024;
/// Longest silence of a recording's upload; a `required` recording silent for
/// [`RECORDING_STALL_SECS`] ends the session.
pub const RECORDING_KEEPALIVE_SECS: u64 = 2;
/// How long the relay waits for a `required` recording's upload before it ends the session.
pub const RECORDING_STALL_SECS: u64 = 10;

/// Most events in one [`ClientMessage::SessionEvents`].
pub const MAX_EVENTS_PER_MESSAGE: usize = 64;

/// An agent's identity key and its proof of possession at join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProof {
    /// The agent's RSA public key (SubjectPublicKeyInfo DER).
    pub key: Vec<u8>,
    /// Its signature over the join transcript
    /// ([`crate::session_proofs::JoinTranscript`]).
    pub proof: Vec<u8>,
}

/// Messages from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayMessage {
    /// Login accepted.
    LoginOk {
        /// Certificate over the operator's key, signed by the relay's issuing key.
        certificate: OperatorCert,
        /// The authority whose issuing key signed `certificate` (root key + issuer
        /// certificate): what a kiosk needs to check it offline.
        authority: Authority,
        /// The relay's current revocation list, for the operator to pass on to kiosks.
        revocations: RevocationList,
    },
    /// A session was created for the operator.
    SessionCreated {
        /// The ten digits.
        code: String,
        /// Session identifier.
        session_id: SessionId,
        /// When the code stops working, Unix seconds.
        expires_at: u64,
    },
    /// The other side has arrived; the stream now carries the end-to-end session.
    Paired {
        /// Session identifier (bound into the end-to-end prologue).
        session_id: SessionId,
        /// The authority that issued the operator's certificate (it may differ from the one
        /// that vouched for the channel when the relay rotated its issuing key in between);
        /// the agent checks it against its pin and the certificate against it.
        authority: Authority,
        /// This side's token to come back with if the connection breaks.
        resume_token: ResumeToken,
    },
    /// The attach proof and certificate hold: the connection may hand in the session's
    /// events and recording.
    Attached {
        /// Bytes of the session's recording the relay holds already (0 for none): an upload
        /// that was interrupted goes on from here.
        recording_stored: u64,
    },
    /// The recording is stored up to this many bytes.
    RecordingStored {
        /// Bytes of the recording file the relay holds.
        stored: u64,
    },
    /// The events handed in are on the relay's record, up to this number.
    EventsStored {
        /// The highest event number stored for the session.
        last: u32,
    },
    /// A request failed.
    Error {
        /// What failed.
        kind: RelayErrorKind,
        /// Human-readable explanation (contains no secret).
        message: String,
        /// Seconds to wait before retrying, when rate limited.
        retry_after_secs: Option<u64>,
    },
    /// The answer to [`ClientMessage::LoginChallenge`]: fresh random bytes, good for the next
    /// login on this connection only.
    LoginChallenge {
        /// What the operator's key signs ([`crate::login_proof`]).
        challenge: Challenge,
    },
    /// Where the operator signs in for [`ClientMessage::OidcLogin`]: the identity provider's
    /// page and the code to type there.
    OidcDevice {
        /// The provider's page.
        verification_uri: String,
        /// The page with the code filled in, when the provider offers one.
        verification_uri_complete: Option<String>,
        /// The code to type.
        user_code: String,
        /// Seconds the code is valid.
        expires_in: u64,
    },
    /// Where the operator signs in for [`ClientMessage::OidcBrowserLogin`]: the provider's
    /// authorization page, which the viewer opens in the system browser.
    OidcBrowser {
        /// The authorization request (PKCE challenge, state and nonce included).
        authorization_url: String,
    },
}

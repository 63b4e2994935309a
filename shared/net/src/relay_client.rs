//! Client side of the relay channel: connect, verify the pinned relay key, log in, create or
//! join a session, and hand over the stream for the end-to-end session once paired.

use crate::clock;
use crate::dial::{DialError, Dialed, Dialer, Relay};
use crate::oidc_redirect::RedirectListener;
use crate::proxy::{ProxyEnv, ProxySettings};
use crate::stream::{BoxIo, FramedStream, StreamError};
use rand_core::OsRng;
use sightline_core::authority::Authority;
use sightline_core::cert::{CertBody, OperatorCert};
use sightline_core::channel::{Channel, ChannelConfig};
use sightline_core::code::SessionCode;
use sightline_core::error::AuthError;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::login_proof::LoginTranscript;
use sightline_core::relay_channel::{ClientHandshake, RelayInfo};
use sightline_core::relay_proto::{
    AgentProof, ClientMessage, RelayErrorKind, RelayMessage, ResumeToken, Secret, SessionId,
    MAX_EVENTS_PER_MESSAGE, MAX_RECORDING_CHUNK,
};
use sightline_core::revocation::RevocationList;
use sightline_core::session_events::SignedEvent;
use sightline_core::session_proofs::{AttachTranscript, JoinTranscript};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long connecting and each request/answer exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest a viewer waits for the operator to sign in at the identity provider (the relay
/// gives up at 10 minutes).
pub const OIDC_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(660);

/// Where the operator signs in for an OpenID Connect login (the relay's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSignIn {
    /// The identity provider's page.
    pub verification_uri: String,
    /// The page with the code filled in, when the provider offers one.
    pub verification_uri_complete: Option<String>,
    /// The code to type there.
    pub user_code: String,
    /// Seconds the code is valid.
    pub expires_in: u64,
}

/// Errors talking to the relay.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The relay address is not a valid list of routes.
    #[error("relay address: {0}")]
    Address(String),
    /// No route reached the relay; each route and why.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The relay did not answer in time.
    #[error("relay did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or carried invalid data.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// Protocol or authentication failure (including a relay key that does not match the pin).
    #[error(transparent)]
    Protocol(#[from] sightline_core::Error),
    /// The relay closed the connection.
    #[error("relay closed the connection")]
    Closed,
    /// The relay refused the request.
    #[error("{message}")]
    Refused {
        /// Category.
        kind: RelayErrorKind,
        /// Relay's explanation.
        message: String,
        /// Seconds to wait when rate limited.
        retry_after_secs: Option<u64>,
    },
    /// The relay answered something that does not fit the request.
    #[error("unexpected answer from relay")]
    Unexpected,
    /// The browser sign-in's loopback redirect failed.
    #[error("the sign-in's loopback redirect failed: {0}")]
    Redirect(#[from] std::io::Error),
    /// A recording piece longer than the relay takes in one message; nothing was sent.
    #[error("a recording piece of {len} bytes is over the {max}-byte limit of one message")]
    TooLarge {
        /// Its length.
        len: usize,
        /// [`MAX_RECORDING_CHUNK`].
        max: usize,
    },
}

/// A session code handed out by the relay.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// The code to read to the customer.
    pub code: SessionCode,
    /// Session id.
    pub session_id: SessionId,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// A connection to the relay over a verified Noise channel.
#[derive(Debug)]
pub struct RelayClient {
    stream: FramedStream<BoxIo>,
    channel: Channel,
    info: RelayInfo,
    pin: Fingerprint,
    dialed: Option<Dialed>,
}

/// What a login brings back, checked against the pin: the certificate, the authority whose
/// issuing key signed it, and the relay's current revocation list.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    /// The operator certificate.
    pub certificate: OperatorCert,
    /// Its verified content.
    pub body: CertBody,
    /// The authority that issued it (root matches the pin, issuer certificate valid now).
    pub authority: Authority,
    /// The relay's revocation list (chains to the pinned root).
    pub revocations: RevocationList,
}

/// A joined session: the stream that now carries the end-to-end session, its id, and the
/// authority that issued the operator's certificate (root checked against the pin, issuer
/// certificate valid now).
#[derive(Debug)]
pub struct Joined {
    /// The stream.
    pub stream: FramedStream<BoxIo>,
    /// Session id (bound into the end-to-end prologue).
    pub session_id: SessionId,
    /// Whose certificates the agent accepts for this session.
    pub authority: Authority,
    /// The token to come back with if the connection breaks ([`RelayClient::resume`]).
    pub resume_token: ResumeToken,
}

/// The operator's side of a pairing: the stream that now carries the end-to-end session, its
/// id, and the token to come back with if the connection breaks.
#[derive(Debug)]
pub struct Paired {
    /// The stream.
    pub stream: FramedStream<BoxIo>,
    /// Session id (bound into the end-to-end prologue).
    pub session_id: SessionId,
    /// The token for [`RelayClient::resume`].
    pub resume_token: ResumeToken,
}

async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| ClientError::Timeout(d))?
}

impl RelayClient {
    /// Connects to the relay at `addr` (a list of routes, see [`crate::route`]), through the
    /// proxy the environment names, and completes the channel handshake; fails unless the
    /// relay proves the root key whose fingerprint is `pin` (and a valid issuing key
    /// certified by it). Nothing secret is sent before that check.
    pub async fn connect(addr: &str, pin: Fingerprint) -> Result<Self, ClientError> {
        let routes = addr.parse().map_err(ClientError::Address)?;
        let relay = Relay::new(
            routes,
            Dialer::new(ProxySettings::Env(ProxyEnv::from_env())),
        );
        Self::connect_to(&relay, pin).await
    }

    /// Like [`RelayClient::connect`], over the first of `relay`'s routes that works
    /// ([`RelayClient::dialed`] tells which).
    pub async fn connect_to(relay: &Relay, pin: Fingerprint) -> Result<Self, ClientError> {
        timed(REQUEST_TIMEOUT, async {
            let (io, dialed) = relay.dial().await?;
            let mut client = Self::handshake(io, pin).await?;
            client.dialed = Some(dialed);
            Ok(client)
        })
        .await
    }

    /// Completes the channel handshake, as [`RelayClient::connect`] does, over a TCP
    /// connection the caller opened (from a chosen source address, say).
    pub async fn connect_stream(tcp: TcpStream, pin: Fingerprint) -> Result<Self, ClientError> {
        let _ = tcp.set_nodelay(true);
        Self::connect_io(Box::new(tcp), pin).await
    }

    /// Completes the channel handshake over any byte stream to the relay the caller opened.
    pub async fn connect_io(io: BoxIo, pin: Fingerprint) -> Result<Self, ClientError> {
        timed(REQUEST_TIMEOUT, Self::handshake(io, pin)).await
    }

    async fn handshake(io: BoxIo, pin: Fingerprint) -> Result<Self, ClientError> {
        let mut stream = FramedStream::new(io);
        let (hs, first) = ClientHandshake::start(pin, clock::seed(), ChannelConfig::default())?;
        stream.write_all(&first).await?;
        let answer = stream.read_message().await?.ok_or(ClientError::Closed)?;
        let (channel, info) = hs.finish(&answer, clock::now_unix())?;
        Ok(Self {
            stream,
            channel,
            info,
            pin,
            dialed: None,
        })
    }

    /// The route this connection took, when it was dialled from a list of routes.
    pub fn dialed(&self) -> Option<&Dialed> {
        self.dialed.as_ref()
    }

    /// The relay's authority as proven on this channel (root verified against the pin).
    pub fn authority(&self) -> &Authority {
        &self.info.authority
    }

    async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let bytes = self.channel.send(msg)?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<RelayMessage, ClientError> {
        loop {
            let frame = self
                .stream
                .read_message()
                .await?
                .ok_or(ClientError::Closed)?;
            if let Some(msg) = self
                .channel
                .receive::<RelayMessage>(&frame, "relay message")?
            {
                return match msg {
                    RelayMessage::Error {
                        kind,
                        message,
                        retry_after_secs,
                    } => Err(ClientError::Refused {
                        kind,
                        message,
                        retry_after_secs,
                    }),
                    other => Ok(other),
                };
            }
        }
    }

    /// Logs in as an operator; returns the certificate over `key`'s public half, verified
    /// with the authority that issued it (and that authority against the pin), and the
    /// relay's revocation list. The relay
    /// first hands out a challenge, which `key` signs with this channel's handshake hash, the
    /// public key and `user` (proof of possession, [`sightline_core::login_proof`]): one
    /// signature per login, over a transcript never signed before.
    pub async fn login(
        &mut self,
        user: &str,
        password: Secret,
        second_factor: Option<Secret>,
        key: &PrivateIdentity,
    ) -> Result<LoginGrant, ClientError> {
        timed(REQUEST_TIMEOUT, async {
            let (operator_key, proof) = self.prove(user, key).await?;
            // -> Login { .., operator_key, proof }
            let msg = ClientMessage::Login {
                user: user.to_string(),
                password,
                second_factor,
                operator_key,
                proof,
            };
            self.send(&msg).await?;
            let answer = self.receive().await?;
            self.grant(answer, key)
        })
        .await
    }

    /// Logs in through the relay's OpenID Connect provider `provider` (device grant): the
    /// relay answers where the operator signs in, which `show` gets, then the certificate once
    /// the operator has signed in (in a browser, anywhere), checked as for [`Self::login`]. The
    /// proof of possession names `oidc:PROVIDER` as the user.
    pub async fn oidc_login(
        &mut self,
        provider: &str,
        key: &PrivateIdentity,
        show: impl FnOnce(OidcSignIn),
    ) -> Result<LoginGrant, ClientError> {
        let user = sightline_core::relay_proto::oidc_login_user(provider);
        timed(REQUEST_TIMEOUT, async {
            let (operator_key, proof) = self.prove(&user, key).await?;
            self.send(&ClientMessage::OidcLogin {
                provider: provider.to_owned(),
                operator_key,
                proof,
            })
            .await?;
            match self.receive().await? {
                RelayMessage::OidcDevice {
                    verification_uri,
                    verification_uri_complete,
                    user_code,
                    expires_in,
                } => {
                    show(OidcSignIn {
                        verification_uri,
                        verification_uri_complete,
                        user_code,
                        expires_in,
                    });
                    Ok(())
                }
                _ => Err(ClientError::Unexpected),
            }
        })
        .await?;
        // The operator signs in meanwhile; the relay gives up when the code expires.
        let answer = timed(OIDC_SIGN_IN_TIMEOUT, self.receive()).await?;
        self.grant(answer, key)
    }

    /// Logs in through the relay's OpenID Connect provider `provider` in the system browser
    /// (the authorization-code flow with PKCE, the relay being the client): the relay answers
    /// the page to open, which `open` gets; `redirect` takes what the browser brings back to
    /// its loopback address, which goes to the relay unread; then the certificate, checked as
    /// for [`Self::login`].
    pub async fn oidc_browser_login(
        &mut self,
        provider: &str,
        key: &PrivateIdentity,
        redirect: RedirectListener,
        open: impl FnOnce(String),
    ) -> Result<LoginGrant, ClientError> {
        let user = sightline_core::relay_proto::oidc_login_user(provider);
        let redirect_uri = redirect.redirect_uri();
        let authorization_url = timed(REQUEST_TIMEOUT, async {
            let (operator_key, proof) = self.prove(&user, key).await?;
            self.send(&ClientMessage::OidcBrowserLogin {
                provider: provider.to_owned(),
                operator_key,
                proof,
                redirect_uri,
            })
            .await?;
            match self.receive().await? {
                RelayMessage::OidcBrowser { authorization_url } => Ok(authorization_url),
                _ => Err(ClientError::Unexpected),
            }
        })
        .await?;
        open(authorization_url);
        // The operator signs in meanwhile; the relay gives up after 10 minutes.
        let query = timed(OIDC_SIGN_IN_TIMEOUT, async { Ok(redirect.wait().await?) }).await?;
        let answer = timed(REQUEST_TIMEOUT, async {
            self.send(&ClientMessage::OidcRedirect { query }).await?;
            self.receive().await
        })
        .await?;
        self.grant(answer, key)
    }

    /// Asks for a login challenge and signs it with `key` for `user` over this channel
    /// (`-> LoginChallenge ; <- LoginChallenge { challenge }`): the operator key (SPKI DER)
    /// and the proof.
    async fn prove(
        &mut self,
        user: &str,
        key: &PrivateIdentity,
    ) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        self.send(&ClientMessage::LoginChallenge).await?;
        let RelayMessage::LoginChallenge { challenge } = self.receive().await? else {
            return Err(ClientError::Unexpected);
        };
        let operator_key = key.public().spki_der().to_vec();
        let transcript = LoginTranscript {
            channel_binding: self.channel.handshake_hash(),
            challenge: &challenge,
            operator_key: &operator_key,
            user,
        };
        let proof = transcript.sign(key, &mut OsRng);
        Ok((operator_key, proof))
    }

    /// Checks a login's answer: the certificate, over `key`, from an authority of the pin.
    fn grant(
        &self,
        answer: RelayMessage,
        key: &PrivateIdentity,
    ) -> Result<LoginGrant, ClientError> {
        let RelayMessage::LoginOk {
            certificate,
            authority,
            revocations,
        } = answer
        else {
            return Err(ClientError::Unexpected);
        };
        let now = clock::now_unix();
        authority.verify(&self.pin, now)?;
        let body = authority.verify_operator(&certificate, now)?;
        if !body.key.ct_eq(&key.public().fingerprint()) {
            return Err(sightline_core::Error::from(AuthError::CertificateKeyMismatch).into());
        }
        revocations.check_pin(&self.pin)?;
        Ok(LoginGrant {
            certificate,
            body,
            authority,
            revocations,
        })
    }

    /// Asks for a session code (after login).
    pub async fn create_session(&mut self) -> Result<CreatedSession, ClientError> {
        timed(REQUEST_TIMEOUT, async {
            self.send(&ClientMessage::CreateSession).await?;
            match self.receive().await? {
                RelayMessage::SessionCreated {
                    code,
                    session_id,
                    expires_at,
                } => {
                    let code = code.parse().map_err(|_| ClientError::Unexpected)?;
                    Ok(CreatedSession {
                        code,
                        session_id,
                        expires_at,
                    })
                }
                _ => Err(ClientError::Unexpected),
            }
        })
        .await
    }

    /// Waits (without timeout: the relay expires the code) until a customer joins. The
    /// returned stream then carries the end-to-end session.
    pub async fn wait_paired(self) -> Result<(FramedStream<BoxIo>, SessionId), ClientError> {
        let paired = self.wait_pairing().await?;
        Ok((paired.stream, paired.session_id))
    }

    /// Like [`RelayClient::wait_paired`], with the token to resume the session with.
    pub async fn wait_pairing(mut self) -> Result<Paired, ClientError> {
        match self.receive().await? {
            RelayMessage::Paired {
                session_id,
                resume_token,
                ..
            } => Ok(Paired {
                stream: self.stream,
                session_id,
                resume_token,
            }),
            _ => Err(ClientError::Unexpected),
        }
    }

    /// Comes back to the paired session `session_id` after this side's connection broke,
    /// with the token of its last pairing; waits (at most `wait`) until the relay has paired
    /// both sides again. Returns the stream, which then carries the end-to-end session, and
    /// the next token. The relay answers [`RelayErrorKind::SessionEnded`] when the session is
    /// over or the token is not valid.
    pub async fn resume(
        mut self,
        session_id: SessionId,
        token: ResumeToken,
        wait: Duration,
    ) -> Result<Paired, ClientError> {
        timed(
            REQUEST_TIMEOUT,
            self.send(&ClientMessage::Resume { session_id, token }),
        )
        .await?;
        let answer = timed(wait, self.receive()).await?;
        match answer {
            RelayMessage::Paired {
                session_id: again,
                resume_token,
                ..
            } if again == session_id => Ok(Paired {
                stream: self.stream,
                session_id,
                resume_token,
            }),
            _ => Err(ClientError::Unexpected),
        }
    }

    /// Joins a session with a code. The returned stream then carries the end-to-end session;
    /// the operator's certificate must come from the returned authority.
    pub async fn join(self, code: &SessionCode) -> Result<Joined, ClientError> {
        self.join_with(code, None).await
    }

    /// Joins with `code` as the agent whose identity is `key`, proven on this channel: the
    /// relay then takes the session events the agent signs with it.
    pub async fn join_as(
        self,
        code: &SessionCode,
        key: &PrivateIdentity,
    ) -> Result<Joined, ClientError> {
        self.join_with(code, Some(key)).await
    }

    async fn join_with(
        mut self,
        code: &SessionCode,
        key: Option<&PrivateIdentity>,
    ) -> Result<Joined, ClientError> {
        let pin = self.pin;
        let digits = code.digits();
        let agent = key.map(|key| {
            let der = key.public().spki_der().to_vec();
            let proof = JoinTranscript {
                channel_binding: self.channel.handshake_hash(),
                code: &digits,
                agent_key: &der,
            }
            .sign(key, &mut OsRng);
            AgentProof { key: der, proof }
        });
        let (session_id, authority, resume_token) = timed(REQUEST_TIMEOUT, async {
            self.send(&ClientMessage::Join {
                code: digits.clone(),
                agent,
            })
            .await?;
            match self.receive().await? {
                RelayMessage::Paired {
                    session_id,
                    authority,
                    resume_token,
                } => {
                    authority.verify(&pin, clock::now_unix())?;
                    Ok((session_id, authority, resume_token))
                }
                _ => Err(ClientError::Unexpected),
            }
        })
        .await?;
        Ok(Joined {
            stream: self.stream,
            session_id,
            authority,
            resume_token,
        })
    }
}

/// A second connection of a session's operator, attached to the running session, through
/// which the events the agent signed reach the relay's audit log, and the session's recording
/// reaches the relay's store.
#[derive(Debug)]
pub struct Uplink {
    client: RelayClient,
    /// Bytes of the session's recording the relay held when this connection attached.
    pub recording_stored: u64,
}

impl RelayClient {
    /// Attaches this connection to session `session_id` as its operator: `certificate` from
    /// the login that created the session, `key` the operator's identity.
    pub async fn attach(
        mut self,
        session_id: SessionId,
        certificate: OperatorCert,
        key: &PrivateIdentity,
    ) -> Result<Uplink, ClientError> {
        let operator_key = key.public().spki_der().to_vec();
        let proof = AttachTranscript {
            channel_binding: self.channel.handshake_hash(),
            session_id: &session_id,
            operator_key: &operator_key,
        }
        .sign(key, &mut OsRng);
        let recording_stored = timed(REQUEST_TIMEOUT, async {
            self.send(&ClientMessage::Attach {
                session_id,
                certificate,
                operator_key,
                proof,
            })
            .await?;
            match self.receive().await? {
                RelayMessage::Attached { recording_stored } => Ok(recording_stored),
                _ => Err(ClientError::Unexpected),
            }
        })
        .await?;
        Ok(Uplink {
            client: self,
            recording_stored,
        })
    }
}

impl Uplink {
    /// Hands in `events` (in messages of at most [`MAX_EVENTS_PER_MESSAGE`]); the highest
    /// event number the relay has on record for the session.
    pub async fn send_events(&mut self, events: &[SignedEvent]) -> Result<u32, ClientError> {
        let mut last = 0;
        for chunk in events.chunks(MAX_EVENTS_PER_MESSAGE) {
            let client = &mut self.client;
            let msg = ClientMessage::SessionEvents {
                events: chunk.to_vec(),
            };
            last = timed(REQUEST_TIMEOUT, async {
                client.send(&msg).await?;
                match client.receive().await? {
                    RelayMessage::EventsStored { last } => Ok(last),
                    _ => Err(ClientError::Unexpected),
                }
            })
            .await?;
        }
        Ok(last)
    }

    /// Hands in one piece of the session's recording: `data` (at most
    /// [`MAX_RECORDING_CHUNK`] bytes; empty: a keepalive) starting at `offset` in the recording
    /// file, `last` when nothing follows. Waits until the relay has it on disk and returns the
    /// bytes of the recording it holds. A piece it refuses (a hole, bytes after the last piece,
    /// a session that is not recorded, a session the relay ended) comes back as
    /// [`ClientError::Refused`] with the relay's explanation, and the relay closes the
    /// connection; attach again to go on from [`Uplink::recording_stored`].
    pub async fn send_recording(
        &mut self,
        offset: u64,
        data: &[u8],
        last: bool,
    ) -> Result<u64, ClientError> {
        if data.len() > MAX_RECORDING_CHUNK {
            return Err(ClientError::TooLarge {
                len: data.len(),
                max: MAX_RECORDING_CHUNK,
            });
        }
        let client = &mut self.client;
        let msg = ClientMessage::RecordingChunk {
            offset,
            data: data.to_vec(),
            last,
        };
        timed(REQUEST_TIMEOUT, async {
            client.send(&msg).await?;
            match client.receive().await? {
                RelayMessage::RecordingStored { stored } => Ok(stored),
                _ => Err(ClientError::Unexpected),
            }
        })
        .await
    }
}

//! Direct connections to a LAN-only agent (`agent --lan-only`), without a relay: the agent's
//! address, the choice of certificate (the one stored after the last relay login while it is
//! valid, else a relay login first), and the connection itself: TCP, the preamble
//! ([`AgentHello`] in, [`OperatorHello`] with the relay authority and, when newer than the
//! agent's, the operator's revocation list out: an [`Offer`]), the same end-to-end
//! handshake as through the relay ([`handshake`]), then — once the caller has checked the
//! agent's key against the known hosts ([`crate::known_hosts`]) — a check that the agent
//! accepted this operator ([`Handshaken::accept`]), or an explicit close
//! ([`Handshaken::refuse`]).
//!
//! The agent decides whom it accepts. It verifies the operator's proof before it signs its
//! own, so a refusal shows up as the connection closing during the handshake or, at the
//! latest, before the agent's first session message; both are reported as
//! [`DirectError::Refused`].

use crate::certstore::{self, StoreError, StoredCert};
use crate::client::OperatorRights;
use sightline_core::authority::Authority;
use sightline_core::cert::OperatorCert;
use sightline_core::e2e::{E2eConfig, Session, Trust};
use sightline_core::identity::{Fingerprint, PrivateIdentity, MIN_PEER_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_core::messages::{CloseReason, Message};
use sightline_core::relay_proto::SessionId;
use sightline_core::revocation::RevocationList;
use sightline_net::session::{self, SessionError};
use sightline_net::stream::{FramedStream, StreamError};
use sightline_net::{cli, clock, keystore};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Time allowed for the TCP connection and for the agent's hello.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait after the handshake for the agent's first message (it sends its hello at
/// once when it accepts the operator); after that the session goes on without it.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The error when a direct connection has no certificate to offer and cannot get one.
pub const NO_CERTIFICATE: &str = "no valid operator certificate: log in to the relay once \
     (viewer session --relay … --user …) or pass --relay/--user with --direct";

/// Start of every error for an agent that would not accept this operator.
pub const REFUSED_PREFIX: &str = "the agent refused this operator";

/// A LAN-only agent's address: `HOST`, `HOST:PORT`, `IPv6`, `[IPv6]` or `[IPv6]:PORT`; the
/// port defaults to 7615.
pub use sightline_net::address::HostPort as DirectAddress;

/// Why the stored certificate cannot be used for a direct connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// The stored files are loose, damaged or half there (or the identity key is): refused,
    /// never used and never replaced by a direct connection.
    BadFiles(String),
    /// Nothing stored, or a certificate that is no use now (expired, for another key, from
    /// another relay, not signed by the stored CA key): a relay login gets a new one.
    Invalid(String),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::BadFiles(s) | Unusable::Invalid(s) => f.write_str(s),
        }
    }
}

/// Checks what [`certstore::load`] found: the certificate must verify against the stored
/// authority (its issuing key, whose certificate must be valid at `now` too) and be valid at
/// `now`, be for the operator's identity key `key` (`None`: there is no key yet), not be on the
/// stored revocation list and, when a relay key is pinned (flag or config), come from that
/// relay's root key.
pub fn check_stored(
    loaded: Result<Option<StoredCert>, StoreError>,
    key: Option<&Fingerprint>,
    pinned: Option<&Fingerprint>,
    now: u64,
) -> Result<(StoredCert, OperatorRights), Unusable> {
    let stored = match loaded {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Unusable::Invalid(
                "no operator certificate is stored".into(),
            ))
        }
        Err(StoreError::Outdated(_)) => {
            return Err(Unusable::Invalid(
                "the stored certificate is from a version before issuing keys".into(),
            ))
        }
        Err(e) => {
            return Err(Unusable::BadFiles(format!(
                "{e}; refusing to use the stored operator certificate (fix or remove the file, \
                 or log in through the relay without --direct, which replaces it)"
            )))
        }
    };
    let invalid = |why: String| Err(Unusable::Invalid(format!("the stored certificate {why}")));
    let body = match stored.authority.verify_operator_signature(&stored.cert) {
        Ok(body) => body,
        Err(_) => return invalid("does not verify against the stored relay authority".into()),
    };
    if let Some(pin) = pinned {
        if !stored.authority.root().fingerprint().ct_eq(pin) {
            return invalid(
                "is from another relay (its root key does not match the relay key)".into(),
            );
        }
    }
    match key {
        None => return invalid("is for an identity key that no longer exists".into()),
        Some(k) if !body.key.ct_eq(k) => {
            return invalid("was issued for another identity key".into())
        }
        Some(_) => {}
    }
    if let Err(e) = stored.authority.verify_operator(&stored.cert, now) {
        return if now >= body.not_after {
            invalid(format!("expired at {}", cli::utc(body.not_after)))
        } else {
            invalid(format!("is not valid now ({e})"))
        };
    }
    if stored
        .revocations
        .as_ref()
        .is_some_and(|l| l.is_revoked(body.serial))
    {
        return invalid("has been revoked (it is on the relay's revocation list)".into());
    }
    let rights = OperatorRights::from_body(&body);
    Ok((stored, rights))
}

/// Where the certificate of a direct connection comes from.
#[derive(Debug, Clone)]
pub enum CertificateChoice {
    /// The stored one: it verifies and is valid.
    Stored(Box<StoredCert>, OperatorRights),
    /// A relay login first (which stores a fresh one); why the stored one is no use.
    Login(String),
}

/// Picks the certificate for a direct connection: the stored one when usable; else a relay
/// login when `can_log_in` (relay address, relay key and user known), except for bad files,
/// which are refused; else the error for the operator.
pub fn choose_certificate(
    stored: Result<(StoredCert, OperatorRights), Unusable>,
    can_log_in: bool,
) -> Result<CertificateChoice, String> {
    match stored {
        Ok((s, rights)) => Ok(CertificateChoice::Stored(Box::new(s), rights)),
        Err(Unusable::BadFiles(why)) => Err(why),
        Err(Unusable::Invalid(why)) if can_log_in => Ok(CertificateChoice::Login(why)),
        Err(Unusable::Invalid(why)) => Err(format!("{NO_CERTIFICATE} ({why})")),
    }
}

/// The fingerprint of the operator's identity key in `data_dir`, `None` when there is none
/// yet (a key file that cannot be used is an error).
pub fn identity_fingerprint(data_dir: &Path) -> Result<Option<Fingerprint>, keystore::KeyError> {
    let path = data_dir.join("identity-key.pem");
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => Ok(Some(
            keystore::load_key(&path, MIN_PEER_BITS)?
                .public()
                .fingerprint(),
        )),
    }
}

/// Reads and checks the stored certificate in `data_dir` (see [`check_stored`]) at the current
/// time.
pub fn inspect_store(
    data_dir: &Path,
    pinned: Option<&Fingerprint>,
) -> Result<(StoredCert, OperatorRights), Unusable> {
    let key = identity_fingerprint(data_dir).map_err(|e| Unusable::BadFiles(e.to_string()))?;
    check_stored(
        certstore::load(data_dir),
        key.as_ref(),
        pinned,
        clock::now_unix(),
    )
}

/// Why a direct connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// The TCP connection could not be made.
    #[error("cannot connect to the agent at {address}: {source}")]
    Connect {
        /// The address tried.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The agent did not say hello, or said something else.
    #[error("{0}")]
    Preamble(String),
    /// The agent would not accept this operator (key or certificate not authorised).
    #[error("{REFUSED_PREFIX}: {0}")]
    Refused(String),
    /// The handshake failed for another reason (the agent's proof is invalid, a timeout).
    #[error("end-to-end handshake with the agent failed: {0}")]
    Handshake(String),
}

/// What the agent did first once the handshake was done.
#[derive(Debug)]
pub enum FirstWord {
    /// It accepted the operator; application messages that came with its first message, to be
    /// handed to the session (its hello is not among them).
    Accepted(Vec<Message>),
    /// It accepted the operator and closed the session at once with this reason.
    Closed(CloseReason),
    /// It said nothing in [`ACCEPT_TIMEOUT`]; the session goes on.
    Silent,
}

/// A completed handshake: the agent's key is known ([`Handshaken::agent_key`]) but not yet
/// checked, and nothing of the session has been read. The only ways on are
/// [`Handshaken::accept`] and [`Handshaken::refuse`].
#[derive(Debug)]
pub struct Handshaken {
    stream: FramedStream<TcpStream>,
    session: Session,
}

impl Handshaken {
    /// The fingerprint of the key the agent proved in the handshake.
    pub fn agent_key(&self) -> Fingerprint {
        self.session.peer().fingerprint
    }

    /// The agent's key is accepted: waits for the agent's first message (its acceptance of
    /// this operator).
    pub async fn accept(mut self) -> Result<DirectConnection, DirectError> {
        let first = first_word(&mut self.stream, &mut self.session, ACCEPT_TIMEOUT).await?;
        Ok(DirectConnection {
            stream: self.stream,
            session: self.session,
            first,
        })
    }

    /// The agent's key is refused: ends the session with an explicit close (the agent logs
    /// that the operator ended it) without reading anything of it.
    pub async fn refuse(mut self) {
        if let Ok(bytes) = self.session.close(CloseReason::EndedByOperator) {
            let _ = self.stream.write_all(&bytes).await;
        }
        let _ = self.stream.shutdown().await;
    }
}

/// An established direct session, before its pump runs.
#[derive(Debug)]
pub struct DirectConnection {
    /// The stream, carrying the end-to-end session.
    pub stream: FramedStream<TcpStream>,
    /// The verified session.
    pub session: Session,
    /// What the agent did first.
    pub first: FirstWord,
}

/// What the preamble offers a LAN-only agent besides the certificate: the authority the
/// certificate chains to, and the operator's newest revocation list (sent only when it is
/// newer than the agent's).
#[derive(Debug, Clone)]
pub struct Offer {
    /// The relay authority that issued the certificate.
    pub authority: Authority,
    /// The revocation list of the last relay login, if the viewer has one.
    pub revocations: Option<RevocationList>,
}

/// Connects to the agent at `address`, runs the preamble with `offer` (the authority `cert`
/// chains to, and a newer revocation list) and the end-to-end handshake with `key` and `cert`.
/// Any agent key passes the handshake: the caller checks it ([`Handshaken::agent_key`])
/// before going on.
pub async fn handshake(
    address: &DirectAddress,
    key: &PrivateIdentity,
    cert: OperatorCert,
    offer: &Offer,
) -> Result<Handshaken, DirectError> {
    let target = address.to_string();
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            return Err(DirectError::Connect {
                address: target,
                source,
            })
        }
        Err(_) => {
            return Err(DirectError::Connect {
                address: target,
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
                ),
            })
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut stream = FramedStream::new(tcp);
    let session_id = preamble(&mut stream, offer).await?;
    let cfg = E2eConfig {
        session_id,
        seed: clock::seed(),
        // Pinned by the caller, against the known hosts, right after the handshake.
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    };
    let session = session::operator_handshake(&mut stream, cfg, key, cert)
        .await
        .map_err(handshake_error)?;
    Ok(Handshaken { stream, session })
}

/// The operator's side of the preamble: reads the agent's hello, answers with the authority
/// and, when it is newer than the agent's, the revocation list; returns the session id the
/// handshake binds.
pub async fn preamble<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    offer: &Offer,
) -> Result<SessionId, DirectError> {
    let first = tokio::time::timeout(CONNECT_TIMEOUT, stream.read_message())
        .await
        .map_err(|_| {
            DirectError::Preamble(format!(
                "the agent did not say hello within {}s (is it a LAN-only agent?)",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?;
    let bytes = match first {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(DirectError::Preamble(
                "the agent closed the connection before saying hello (is it a LAN-only agent, \
                 and does it accept connections from this address?)"
                    .into(),
            ))
        }
        Err(e) if is_cut(&e) => {
            return Err(DirectError::Preamble(format!(
                "the agent closed the connection before saying hello ({e})"
            )))
        }
        Err(e) => {
            return Err(DirectError::Preamble(format!(
                "not a LAN-only Sightline agent ({e})"
            )))
        }
    };
    let hello = AgentHello::from_bytes(&bytes).map_err(|e| {
        DirectError::Preamble(format!(
            "the agent's hello was not understood ({e}); is it a LAN-only Sightline agent of a \
             compatible version?"
        ))
    })?;
    let answer = OperatorHello::new(
        Some(offer.authority.clone()),
        offer.revocations.clone(),
        &hello,
    );
    if answer.revocations.is_some() {
        tracing::info!(
            sequence = offer.revocations.as_ref().map(RevocationList::sequence),
            held = ?hello.revocation_sequence,
            "offering the agent a newer revocation list"
        );
    }
    let framed = answer
        .to_bytes()
        .and_then(|b| sightline_core::frame::encode(&b))
        .map_err(|e| DirectError::Preamble(format!("cannot encode the operator hello: {e}")))?;
    stream.write_all(&framed).await.map_err(|e| {
        if is_cut(&e) {
            DirectError::Refused(format!(
                "it closed the connection after its hello ({e}): this address may not connect"
            ))
        } else {
            DirectError::Preamble(e.to_string())
        }
    })?;
    Ok(hello.session_id)
}

/// Whether a stream error means the peer closed or reset the connection.
fn is_cut(e: &StreamError) -> bool {
    use std::io::ErrorKind::*;
    match e {
        StreamError::Io(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
        ),
        StreamError::Protocol(sightline_core::Error::Truncated) => true,
        StreamError::Protocol(_) => false,
    }
}

/// A handshake failure: the connection closing means the agent refused this operator (or
/// the relay CA key the preamble offered).
fn handshake_error(e: SessionError) -> DirectError {
    match e {
        SessionError::Closed => DirectError::Refused(
            "it closed the connection during the handshake: the relay CA key or the certificate \
             offered is not accepted there"
                .into(),
        ),
        SessionError::Stream(s) if is_cut(&s) => DirectError::Refused(format!(
            "it closed the connection during the handshake ({s}): the relay CA key or the \
             certificate offered is not accepted there"
        )),
        other => DirectError::Handshake(other.to_string()),
    }
}

/// Waits up to `wait` for the agent's first message after the handshake. An agent that
/// refused the operator closes the connection instead.
pub async fn first_word<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut FramedStream<S>,
    session: &mut Session,
    wait: Duration,
) -> Result<FirstWord, DirectError> {
    let refused = |why: Option<String>| {
        let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
        DirectError::Refused(format!(
            "it closed the connection right after the handshake{why}: this operator's \
             certificate or key is not authorised there"
        ))
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = match tokio::time::timeout_at(deadline, stream.read_message()).await {
            Err(_) => {
                tracing::warn!("the agent said nothing after the handshake; going on");
                return Ok(FirstWord::Silent);
            }
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) => return Err(refused(None)),
            Ok(Err(e)) if is_cut(&e) => return Err(refused(Some(e.to_string()))),
            Ok(Err(e)) => return Err(DirectError::Handshake(e.to_string())),
        };
        match session.receive(&frame) {
            // Part of a fragmented message.
            Ok(None) => {}
            Ok(Some(Message::Hello { .. } | Message::Pong { .. })) => {
                return Ok(FirstWord::Accepted(Vec::new()))
            }
            Ok(Some(Message::Close { reason })) => return Ok(FirstWord::Closed(reason)),
            Ok(Some(Message::Ping { id, payload })) => {
                let pong = session
                    .send(&Message::Pong { id, payload })
                    .map_err(|e| DirectError::Handshake(e.to_string()))?;
                stream
                    .write_all(&pong)
                    .await
                    .map_err(|e| refused(Some(e.to_string())))?;
                return Ok(FirstWord::Accepted(Vec::new()));
            }
            Ok(Some(other)) => return Ok(FirstWord::Accepted(vec![other])),
            Err(e) => return Err(DirectError::Handshake(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::testkeys::{
        authority, authority_for, cert_for, keys, lan_agent, lan_agent_holding, revocations,
        valid_cert,
    };
    use sightline_net::session::{AppChannels, SessionEnd};
    use tokio::net::TcpListener;

    const NOW: u64 = 1_800_000_000;

    fn stored(cert: OperatorCert, authority: Authority) -> Result<Option<StoredCert>, StoreError> {
        Ok(Some(StoredCert {
            cert,
            authority,
            revocations: None,
        }))
    }

    /// What a viewer with no revocation list offers.
    fn offer() -> Offer {
        Offer {
            authority: authority(),
            revocations: None,
        }
    }

    fn operator() -> Fingerprint {
        keys().operator.public().fingerprint()
    }

    fn check(
        loaded: Result<Option<StoredCert>, StoreError>,
    ) -> Result<(StoredCert, OperatorRights), Unusable> {
        check_stored(loaded, Some(&operator()), None, NOW)
    }

    fn invalid(r: Result<(StoredCert, OperatorRights), Unusable>) -> String {
        match r {
            Err(Unusable::Invalid(why)) => why,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn a_valid_stored_certificate_is_used() {
        let k = keys();
        let cert = valid_cert(NOW);
        let (s, rights) = check(stored(cert.clone(), authority())).expect("usable");
        assert_eq!(s.cert, cert);
        assert_eq!(rights.operator, "alice");
        assert_eq!(rights.certificate_expires, NOW + 3600);
        // With the relay pinned to the same root too.
        let pin = k.root.public().fingerprint();
        assert!(check_stored(
            stored(cert, authority()),
            Some(&operator()),
            Some(&pin),
            NOW
        )
        .is_ok());
        // Used whether or not the relay could be reached.
        for can_log_in in [false, true] {
            let choice =
                choose_certificate(check(stored(valid_cert(NOW), authority())), can_log_in);
            assert!(
                matches!(choice, Ok(CertificateChoice::Stored(_, ref r)) if r.operator == "alice")
            );
        }
    }

    #[test]
    fn an_expired_certificate_needs_a_relay_login() {
        let k = keys();
        let expired = cert_for(&k.ca, &k.operator, NOW - 7200, NOW - 1);
        let why = invalid(check(stored(expired.clone(), authority())));
        assert_eq!(
            why,
            format!("the stored certificate expired at {}", cli::utc(NOW - 1))
        );
        match choose_certificate(check(stored(expired.clone(), authority())), true) {
            Ok(CertificateChoice::Login(w)) => assert_eq!(w, why),
            other => panic!("{other:?}"),
        }
        let err =
            choose_certificate(check(stored(expired, authority())), false).expect_err("no relay");
        assert!(err.starts_with(NO_CERTIFICATE), "{err}");
        assert!(err.contains("expired"), "{err}");
        // Exactly at the end of validity it is expired too; before its start, not valid.
        let ends_now = cert_for(&k.ca, &k.operator, NOW - 60, NOW);
        assert!(invalid(check(stored(ends_now, authority()))).contains("expired"));
        let future = cert_for(&k.ca, &k.operator, NOW + 3600, NOW + 7200);
        assert!(invalid(check(stored(future, authority()))).contains("not valid now"));
    }

    #[test]
    fn no_certificate_and_no_relay_is_the_clear_error() {
        let err = choose_certificate(check(Ok(None)), false).expect_err("nothing to use");
        assert_eq!(
            err,
            "no valid operator certificate: log in to the relay once (viewer session --relay … \
             --user …) or pass --relay/--user with --direct (no operator certificate is stored)"
        );
        assert!(matches!(
            choose_certificate(check(Ok(None)), true),
            Ok(CertificateChoice::Login(_))
        ));
    }

    #[test]
    fn certificates_for_other_keys_relays_or_cas_are_not_used() {
        let k = keys();
        let cert = valid_cert(NOW);
        // Signed by the issuing key, stored next to an authority for another issuing key.
        let why = invalid(check(stored(
            cert.clone(),
            authority_for(&k.root, &k.agent),
        )));
        assert!(
            why.contains("does not verify against the stored relay authority"),
            "{why}"
        );
        // For another identity key, or with no identity key at all.
        let other = cert_for(&k.ca, &k.agent, NOW - 60, NOW + 3600);
        assert!(invalid(check(stored(other, authority()))).contains("another identity key"));
        let none = check_stored(stored(cert.clone(), authority()), None, None, NOW);
        assert!(invalid(none).contains("no longer exists"));
        // From another relay than the pinned one.
        let pin = k.agent.public().fingerprint();
        let r = check_stored(
            stored(cert, authority()),
            Some(&operator()),
            Some(&pin),
            NOW,
        );
        assert!(invalid(r).contains("another relay"));
    }

    #[test]
    fn bad_files_are_refused_even_when_the_relay_is_known() {
        let err = StoreError::LoosePermissions {
            path: "/d/operator-cert.bin".into(),
            mode: 0o644,
        };
        let r = check(Err(err));
        assert!(matches!(r, Err(Unusable::BadFiles(_))));
        let message = choose_certificate(r, true).expect_err("refused");
        assert!(
            message.starts_with("/d/operator-cert.bin: permissions 644 are too open"),
            "{message}"
        );
        assert!(message.contains("refusing to use the stored operator certificate"));
    }

    #[test]
    fn the_store_is_inspected_with_the_identity_key() {
        let k = keys();
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            inspect_store(dir.path(), None),
            Err(Unusable::Invalid(_))
        ));
        let now = clock::now_unix();
        certstore::save(
            dir.path(),
            &valid_cert(now),
            &authority(),
            &revocations(1, &[]),
        )
        .unwrap();
        // No identity key yet: the certificate cannot be ours.
        assert!(invalid(inspect_store(dir.path(), None)).contains("no longer exists"));
        let pem = k.operator.to_pkcs8_pem().unwrap();
        keystore::write_new_secret(&dir.path().join("identity-key.pem"), pem.as_bytes()).unwrap();
        let (_, rights) = inspect_store(dir.path(), None).expect("usable");
        assert_eq!(rights.operator, "alice");
        let other = k.agent.public().fingerprint();
        assert!(matches!(
            inspect_store(dir.path(), Some(&other)),
            Err(Unusable::Invalid(_))
        ));
    }

    /// Handshake, and on without any check of the agent's key.
    async fn connect(
        address: &DirectAddress,
        key: &PrivateIdentity,
        cert: OperatorCert,
        offer: &Offer,
    ) -> Result<DirectConnection, DirectError> {
        handshake(address, key, cert, offer).await?.accept().await
    }

    async fn listener() -> (TcpListener, DirectAddress) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a: DirectAddress = l.local_addr().unwrap().to_string().parse().unwrap();
        (l, a)
    }

    #[tokio::test]
    async fn preamble_and_handshake_with_a_lan_agent() {
        let k = keys();
        let (l, address) = listener().await;
        let agent = tokio::spawn(lan_agent(l, vec![]));
        let cert = valid_cert(clock::now_unix());
        let mut conn = connect(&address, &k.operator, cert, &offer())
            .await
            .expect("accepted");
        assert!(
            matches!(&conn.first, FirstWord::Accepted(m) if m.is_empty()),
            "{:?}",
            conn.first
        );
        assert_eq!(
            conn.session.peer().fingerprint,
            k.agent.public().fingerprint()
        );
        // The rest is the usual session: here the agent ends it.
        let (app, _to_peer, _from_peer) = AppChannels::pair(8);
        let hello = Message::Hello {
            software: "test-viewer".into(),
            capabilities: vec![],
        };
        let end = session::run(
            &mut conn.stream,
            &mut conn.session,
            hello,
            std::future::pending(),
            app,
        )
        .await;
        assert_eq!(end, SessionEnd::PeerClosed(CloseReason::EndedByCustomer));
        let agent_sas = agent.await.unwrap().expect("agent accepted");
        assert_eq!(conn.session.sas(), agent_sas);
    }

    #[tokio::test]
    async fn an_operator_key_the_agent_does_not_list_is_refused() {
        let k = keys();
        let (l, address) = listener().await;
        let agent = tokio::spawn(lan_agent(l, vec![Fingerprint([9; 32])]));
        let cert = valid_cert(clock::now_unix());
        let err = connect(&address, &k.operator, cert, &offer())
            .await
            .expect_err("refused");
        assert!(matches!(err, DirectError::Refused(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("the agent refused this operator: "),
            "{err}"
        );
        let why = agent.await.unwrap().expect_err("agent refused");
        assert!(why.contains("not authorised"), "{why}");
    }

    #[tokio::test]
    async fn an_expired_certificate_is_refused_by_the_agent() {
        let k = keys();
        let (l, address) = listener().await;
        let agent = tokio::spawn(lan_agent(l, vec![]));
        let now = clock::now_unix();
        let expired = cert_for(&k.ca, &k.operator, now - 7200, now - 10);
        let err = connect(&address, &k.operator, expired, &offer())
            .await
            .expect_err("refused");
        assert!(err.to_string().starts_with(REFUSED_PREFIX), "{err}");
        assert!(agent.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_ca_the_agent_does_not_pin_is_refused() {
        let k = keys();
        let (l, address) = listener().await;
        let agent = tokio::spawn(lan_agent(l, vec![]));
        // Offered: another relay's authority (and a certificate its issuing key signed).
        let now = clock::now_unix();
        let cert = cert_for(&k.agent, &k.operator, now - 60, now + 3600);
        let foreign = Offer {
            authority: authority_for(&k.other_root, &k.agent),
            revocations: None,
        };
        let err = connect(&address, &k.operator, cert, &foreign)
            .await
            .expect_err("refused");
        assert!(err.to_string().starts_with(REFUSED_PREFIX), "{err}");
        assert!(agent.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn something_that_is_not_an_agent_is_reported() {
        let k = keys();
        let (l, address) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            drop(tcp);
        });
        let err = connect(
            &address,
            &k.operator,
            valid_cert(clock::now_unix()),
            &offer(),
        )
        .await
        .expect_err("no hello");
        assert!(matches!(err, DirectError::Preamble(_)), "{err}");
        assert!(err.to_string().contains("before saying hello"), "{err}");
        server.await.unwrap();
        // Nobody listening.
        let err = connect(
            &address,
            &k.operator,
            valid_cert(clock::now_unix()),
            &offer(),
        )
        .await
        .expect_err("closed port");
        assert!(
            err.to_string()
                .starts_with("cannot connect to the agent at 127.0.0.1:"),
            "{err}"
        );
    }

    #[test]
    fn a_stored_certificate_on_the_stored_revocation_list_is_not_used() {
        let cert = valid_cert(NOW);
        let listed = Ok(Some(StoredCert {
            cert: cert.clone(),
            authority: authority(),
            revocations: Some(revocations(4, &[7])),
        }));
        let why = invalid(check(listed));
        assert!(why.contains("has been revoked"), "{why}");
        let other = Ok(Some(StoredCert {
            cert,
            authority: authority(),
            revocations: Some(revocations(4, &[8])),
        }));
        assert!(check(other).is_ok());
    }

    #[tokio::test]
    async fn a_newer_revocation_list_reaches_the_kiosk_and_an_older_one_does_not() {
        let k = keys();
        // The kiosk holds list 1 (nothing revoked); the viewer offers list 2, which names the
        // operator's certificate (serial 7): the kiosk adopts it and refuses.
        let (l, address) = listener().await;
        let agent = tokio::spawn(lan_agent_holding(l, vec![], Some(revocations(1, &[]))));
        let newer = Offer {
            authority: authority(),
            revocations: Some(revocations(2, &[7])),
        };
        let cert = valid_cert(clock::now_unix());
        let err = connect(&address, &k.operator, cert.clone(), &newer)
            .await
            .expect_err("refused");
        assert!(err.to_string().starts_with(REFUSED_PREFIX), "{err}");
        let why = agent.await.unwrap().expect_err("the kiosk refused");
        assert!(why.contains("revoked"), "{why}");
        // A kiosk holding list 3 is not offered the older list 2: it keeps its own and, as
        // list 3 does not name the certificate, accepts the operator.
        let (l, address) = listener().await;
        let agent = tokio::spawn(lan_agent_holding(l, vec![], Some(revocations(3, &[]))));
        let conn = connect(&address, &k.operator, cert, &newer)
            .await
            .expect("accepted");
        drop(conn);
        let (_, held) = agent.await.unwrap().expect("accepted");
        assert_eq!(held, Some(3));
    }
}

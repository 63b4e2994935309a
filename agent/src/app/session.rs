//! Runs one established session, relayed or direct: tells the customer who is there and what
//! they may do, then runs the session pump beside the customer's controller
//! ([`sightline_agent::controller`]), which decides when and why the session ends.

use serde_json::json;
use sightline_agent::controller::media_proof::MediaProof;
use sightline_agent::controller::signed_events::EventSigner;
use sightline_agent::controller::{Customer, Wire};
use sightline_agent::customer::Summary;
use sightline_agent::rights::Rights;
use sightline_agent::share::ShareConfig;
use sightline_core::cert::{CertBody, RecordingMode};
use sightline_core::e2e::Session;
use sightline_core::identity::PrivateIdentity;
use sightline_core::messages::{CloseReason, Message};
use sightline_core::session_events::SessionEvent;
use sightline_core::text::{display_safe, MAX_DISPLAY_CHARS};
use sightline_net::cli::Output;
use sightline_net::clock;
use sightline_net::resume::{self, LinkEvent, RelayLink};
use sightline_net::session::{self, AppChannels, SessionEnd};
use sightline_net::stream::{BoxIo, FramedStream};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::oneshot;

/// The operator of a session, as the agent knows them after the handshake.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Account name, or the key fingerprint for a key-only kiosk operator.
    pub account: String,
    pub display_name: String,
    pub organisation: String,
    pub rights: Rights,
    pub fingerprint: String,
    /// End of the certificate's validity (none for key-only operators), Unix seconds.
    pub certificate_expires: Option<u64>,
    /// How the agent knows them.
    pub verified_by: &'static str,
    /// Whether their certificate says the session is recorded.
    pub recording: RecordingMode,
}

impl Operator {
    /// The operator a verified certificate names. The names are cleaned for display again
    /// here, whatever the relay did: whoever controls them must not be able to forge what the
    /// customer reads ([`display_safe`]).
    pub fn certified(cert: &CertBody, fingerprint: String) -> Self {
        Self {
            account: display_safe(&cert.operator, MAX_DISPLAY_CHARS),
            display_name: display_safe(&cert.display_name, MAX_DISPLAY_CHARS),
            organisation: display_safe(&cert.organisation, MAX_DISPLAY_CHARS),
            rights: Rights::from_certificate(cert),
            fingerprint,
            certificate_expires: Some(cert.not_after),
            verified_by: "your help desk's relay",
            recording: cert.recording.mode,
        }
    }
}

/// How this agent runs its sessions.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub out: Output,
    /// The agent's identity, to sign the customer's decisions for the relay's audit log
    /// (relayed sessions; a kiosk has no relay to hand them to).
    pub signing_key: Option<Arc<PrivateIdentity>>,
    pub share: ShareConfig,
    pub consent_timeout: Duration,
    /// LAN-only kiosk mode: no consent questions (the kiosk's configuration is the consent),
    /// no terminal input; the banner and hotkeys still work.
    pub unattended: bool,
}

/// The first application message.
pub fn hello_message() -> Message {
    Message::Hello {
        software: format!("sightline-agent/{}", env!("CARGO_PKG_VERSION")),
        capabilities: vec![],
    }
}

/// When the session must end on its own, and why: the certificate's session limit or its
/// expiry, whichever comes first (a session never outlives the authority that allowed it).
pub fn deadline(
    rights: &Rights,
    certificate_expires: Option<u64>,
    now: u64,
) -> Option<(Duration, CloseReason)> {
    let limit = rights.max_session.map(|d| (d, CloseReason::TimeLimit));
    let expiry = certificate_expires.map(|t| {
        (
            Duration::from_secs(t.saturating_sub(now)),
            CloseReason::CertificateExpired,
        )
    });
    match (limit, expiry) {
        (Some(l), Some(e)) => Some(if e.0 < l.0 { e } else { l }),
        (l, e) => l.or(e),
    }
}

/// Runs one established session to its end; `shutdown` resolves on Ctrl-C or SIGTERM. A
/// session through the relay (`relay`) is resumed when its connection breaks. `control_log`
/// hears whether the operator is in control at each change.
pub async fn serve(
    stream: &mut FramedStream<BoxIo>,
    session: &mut Session,
    operator: Operator,
    settings: &SessionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    relay: Option<RelayLink>,
    control_log: Option<UnboundedSender<bool>>,
) -> SessionEnd {
    let out = settings.out;
    let rights = operator.rights;
    announce(out, &operator, session.sas());
    if !rights.may_view() {
        // Nothing to share: end at once and say why, before any capture starts.
        tracing::warn!(operator = %operator.account, "operator may not view; ending the session");
        let (app, _to_peer, _from_peer) = AppChannels::pair(1);
        let end = session::run(
            stream,
            session,
            hello_message(),
            async { CloseReason::NotPermitted },
            app,
        )
        .await;
        closed(out, &end);
        return end;
    }

    let started = clock::now_unix();
    let (app, to_peer, from_peer) = AppChannels::pair(64);
    let (close, close_rx) = oneshot::channel::<CloseReason>();
    // Relayed sessions with an agent key sign the customer's decisions and the video sent
    // (media checkpoints under a session key the first signed event announces).
    let (signer, media) = match (&settings.signing_key, &relay) {
        (Some(key), Some(link)) => {
            let signer = EventSigner::start(key.clone(), link.session_id, to_peer.clone());
            signer.record(SessionEvent::Permissions {
                names: rights.permissions.names().join(","),
            });
            let media = MediaProof::new(link.session_id);
            signer.record(SessionEvent::MediaKey {
                key: media.public_key(),
            });
            (Some(signer), Some(media))
        }
        _ => (None, None),
    };
    let customer = Customer {
        out,
        operator: operator.display_name.clone(),
        organisation: operator.organisation.clone(),
        rights,
        share: settings.share,
        consent_timeout: settings.consent_timeout,
        unattended: settings.unattended,
        control_log,
        signed_events: signer.clone(),
        media,
        recording: operator.recording,
    };
    let unattended = settings.unattended;
    let limit = deadline(&rights, operator.certificate_expires, started);
    // The controller owns every reason of the agent's own to end, so that it stops input
    // before the close goes out.
    let ending = async move {
        let limit = async {
            match limit {
                Some((after, reason)) => {
                    tokio::time::sleep(after).await;
                    tracing::info!(%reason, "the session reached its end");
                    reason
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown => if unattended { CloseReason::Shutdown } else { CloseReason::EndedByCustomer },
            reason = limit => reason,
        }
    };
    let (to_controller, link) = mpsc::channel(8);
    let wire = Wire {
        from_peer,
        to_peer,
        close,
        link: Some(link),
    };
    let controller = tokio::spawn(customer.run(wire, ending));
    let close = async { close_rx.await.unwrap_or(CloseReason::Shutdown) };
    let end = match relay {
        Some(relay) => {
            let (link_tx, link_rx) = mpsc::channel(8);
            let sas = session.sas().to_string();
            let pump = resume::run(stream, session, hello_message(), close, app, relay, link_tx);
            // Boxed: resuming makes a large future.
            let pump = Box::pin(pump);
            let tell = tell_link(out, link_rx, to_controller, sas);
            tokio::join!(pump, tell).0
        }
        None => session::run(stream, session, hello_message(), close, app).await,
    };
    // The controller ends once the pump's channels close, after stopping capture, releasing
    // held input and taking the banner down.
    let used = controller.await.unwrap_or_default();
    closed(out, &end);
    let summary = Summary {
        operator: operator.display_name.clone(),
        organisation: operator.organisation.clone(),
        started,
        ended: clock::now_unix(),
        used,
        reason: end.reason(),
    };
    tracing::info!(operator = %operator.account, fingerprint = %operator.fingerprint,
        duration_secs = summary.duration_secs(), used = ?summary.used.names(), reason = %summary.reason,
        "session ended");
    out.event(summary.json(), || summary.text());
    end
}

/// Who is there and what they may do.
fn announce(out: Output, operator: &Operator, sas: &str) {
    let rights = operator.rights;
    out.event(
        json!({"event": "connected", "sas": sas,
               "peer": {"role": "operator", "operator": operator.account, "display_name": operator.display_name,
                        "organisation": operator.organisation, "permissions": rights.permissions.names(),
                        "max_session_secs": rights.max_session.map_or(0, |d| d.as_secs()),
                        "fingerprint": operator.fingerprint, "certificate_expires": operator.certificate_expires}}),
        || format!(
            "Connected to {} ({}), verified by {}.\nThe operator may: {}\nVerification code: {}  (the operator reads you the same code; {})\n{}",
            operator.display_name,
            if operator.organisation.is_empty() { "no organisation" } else { &operator.organisation },
            operator.verified_by,
            rights.describe(),
            sas,
            sightline_agent::customer::MISMATCH_ADVICE,
            sightline_agent::customer::CTRL_C_ENDS
        ),
    );
}

/// Tells the customer about the connection and passes the news on to the controller.
async fn tell_link(
    out: Output,
    mut events: mpsc::Receiver<LinkEvent>,
    controller: mpsc::Sender<LinkEvent>,
    sas: String,
) {
    while let Some(event) = events.recv().await {
        match &event {
            LinkEvent::Reconnecting { why, within } => out.event(
                json!({"event": "reconnecting", "reason": why, "within_secs": within.as_secs()}),
                || format!("Connection to the operator lost ({why}); reconnecting… Control is suspended meanwhile; the session ends if the connection is not back within {} s.", within.as_secs()),
            ),
            LinkEvent::Resumed => out.event(
                json!({"event": "reconnected", "sas": sas}),
                || format!("Reconnected: the session goes on (verification code still {sas})."),
            ),
        }
        let _ = controller.try_send(event);
    }
}

fn closed(out: Output, end: &SessionEnd) {
    out.event(
        json!({"event": "closed", "reason": end.reason(), "normal": end.is_normal()}),
        || format!("Session ended: {}", end.reason()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(limit: Option<u64>) -> Rights {
        Rights {
            permissions: sightline_core::cert::Permissions::VIEW,
            max_session: limit.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_session_ends_at_the_limit_or_the_certificates_expiry_whichever_is_first() {
        let now = 1_000;
        assert_eq!(deadline(&rights(None), None, now), None);
        assert_eq!(
            deadline(&rights(Some(600)), None, now),
            Some((Duration::from_secs(600), CloseReason::TimeLimit))
        );
        assert_eq!(
            deadline(&rights(Some(600)), Some(now + 60), now),
            Some((Duration::from_secs(60), CloseReason::CertificateExpired))
        );
        assert_eq!(
            deadline(&rights(Some(60)), Some(now + 600), now),
            Some((Duration::from_secs(60), CloseReason::TimeLimit))
        );
        assert_eq!(
            deadline(&rights(None), Some(now + 5), now),
            Some((Duration::from_secs(5), CloseReason::CertificateExpired))
        );
        // Already expired (a clock that moved): the session ends at once.
        assert_eq!(
            deadline(&rights(None), Some(now - 5), now),
            Some((Duration::ZERO, CloseReason::CertificateExpired))
        );
    }
}

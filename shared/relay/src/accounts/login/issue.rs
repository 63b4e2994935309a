//! The end of a complete login: the certificate over the operator's key, with the
//! permissions, session limit and recording rule that the policy and the account allow,
//! recorded before it is signed (so that it can be revoked as soon as it exists) and signed off
//! the async threads.

use super::{LoggedIn, LoginOutcome};
use crate::accounts::auth::Authenticated;
use crate::accounts::labels;
use crate::accounts::users::User;
use crate::authority::certs;
use crate::context::{InternalError, Relay};
use crate::policy::recording;
use rand_core::OsRng;
use sightline_core::cert::{CertBody, OperatorCert, Permissions, RecordingMode};
use sightline_core::identity::PublicIdentity;
use std::net::IpAddr;

/// What an identity provider narrows in a certificate (none for a password login).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Narrowed {
    /// Valid no later than this (the provider's session).
    pub not_after: Option<u64>,
    /// At most these permissions (the provider's groups).
    pub permissions: Option<Permissions>,
}

/// Issues the certificate of `person` (whose relay account, if any, is `account`) over `key`,
/// within what `narrowed` allows.
pub(crate) async fn certificate(
    relay: &Relay,
    account: Option<&User>,
    person: Authenticated,
    key: &PublicIdentity,
    ip: IpAddr,
    now: u64,
    narrowed: Narrowed,
) -> Result<LoginOutcome, InternalError> {
    let policy = &relay.policy;
    let (permissions, max_session_secs) = match account {
        Some(a) => (
            a.effective_permissions(policy.allowed()),
            a.effective_session_limit(policy.max_session_secs()),
        ),
        None => (policy.allowed(), policy.max_session_secs()),
    };
    let permissions = match narrowed.permissions {
        Some(mask) => Permissions(permissions.0 & mask.0),
        None => permissions,
    };
    let mode = recording::effective_mode(policy.recording.mode, account.and_then(|a| a.recording));
    if mode != RecordingMode::Off && !policy.recording.has_recipients() {
        // Only an account's own setting gets here (the policy file cannot say so): the
        // operator must be recorded and cannot be, so no certificate (fail closed).
        return Err(InternalError::Recording(format!(
            "{}'s recording mode is {} but the policy names no recording recipients",
            person.name,
            mode.name()
        )));
    }
    // What the customer will read: cleaned whatever its source (an LDAP attribute, a value
    // stored before `relay user` refused such text).
    let shown = labels::for_certificate(account, &person);
    let issuing = relay.issuing.get();
    let body = CertBody {
        serial: crate::authority::ca::serial(),
        // The relay account's name or the canonical name typed (see
        // `crate::accounts::account_name`): it follows `users::validate_name`, so it holds nothing a
        // terminal would interpret, and every spelling of one person is one name.
        operator: person.name.clone(),
        display_name: shown.display_name,
        organisation: shown.organisation,
        permissions,
        max_session_secs,
        key: key.fingerprint(),
        not_before: now,
        // Never past the issuing key's own certificate.
        not_after: now
            .saturating_add(relay.config.certificate_validity_secs)
            .min(issuing.not_after())
            .min(narrowed.not_after.unwrap_or(u64::MAX)),
        issuer: issuing.authority().issuer().fingerprint(),
        recording: policy.recording.for_certificate(mode),
    };
    let recording = body.recording.clone();
    // Recorded before it exists, so that it can be revoked as soon as it is handed out.
    let record = (body.serial, body.operator.clone(), body.issuer, body.key);
    let (not_before, not_after) = (body.not_before, body.not_after);
    relay
        .with_db(move |db| {
            certs::record(
                db,
                &certs::Issued {
                    serial: record.0,
                    account: &record.1,
                    issuer: record.2,
                    key: record.3,
                    not_before,
                    not_after,
                },
            )
        })
        .await?;
    let serial = body.serial;
    let signer = issuing.clone();
    let certificate =
        tokio::task::spawn_blocking(move || OperatorCert::issue(signer.key(), &body, &mut OsRng))
            .await
            .map_err(|_| InternalError::Worker)??;
    tracing::info!(user = %person.name, role = %person.role, peer = %ip, key = %key.fingerprint(),
        permissions = ?permissions_names(permissions), "login succeeded");
    Ok(LoginOutcome::Accepted {
        certificate,
        who: LoggedIn {
            name: person.name,
            local: account.is_some(),
            role: person.role,
            serial,
            authority: issuing.authority().clone(),
            recording,
        },
    })
}

fn permissions_names(p: Permissions) -> Vec<&'static str> {
    p.names()
}

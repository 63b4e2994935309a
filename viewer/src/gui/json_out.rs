//! Machine-readable events on stdout for `viewer --json`: the same objects the headless
//! `viewer session --json` prints for the code, the connection, consent, control, paused and
//! resumed sharing and the end, plus `first_frame` once the first picture is on screen, so GUI
//! tests under Xvfb know when a screenshot shows the remote screen.

use crate::agent_key::AgentKeyReport;
use crate::client::{consent_name, ClientEvent, OperatorRights};
use crate::consent::ControlChange;
use serde_json::{json, Value};
use sightline_core::messages::{ConsentFor, PauseReason};
use sightline_net::cli::Output;

/// Prints the JSON lines when enabled.
#[derive(Debug)]
pub struct JsonEvents {
    enabled: bool,
    first_frame_sent: bool,
    /// Whether the agent's latest `Control` granted control (to mark revocations).
    control_granted: bool,
}

impl JsonEvents {
    /// A printer; prints nothing unless `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            first_frame_sent: false,
            control_granted: false,
        }
    }

    /// Prints the line for a client event, if it has one.
    pub fn client_event(&mut self, event: &ClientEvent) {
        // The route is told once either way: without --json, on stderr.
        if let (ClientEvent::Route(dialed), false) = (event, self.enabled) {
            eprintln!("{}", sightline_net::cli::route_line(dialed));
        }
        if let Some(v) = self.line(event) {
            self.print(v);
        }
    }

    /// The line for a client event, if it has one; keeps track of control.
    fn line(&mut self, event: &ClientEvent) -> Option<Value> {
        if let ClientEvent::Control { granted, withdrawn } = event {
            let change = ControlChange::new(*granted, self.control_granted, *withdrawn);
            self.control_granted = *granted;
            Some(control_json(change))
        } else {
            event_json(event)
        }
    }

    /// Prints `first_frame` the first time a picture was drawn in this session.
    pub fn first_frame(&mut self, width: u32, height: u32) {
        if !self.first_frame_sent {
            self.first_frame_sent = true;
            self.print(json!({"event": "first_frame", "width": width, "height": height}));
        }
    }

    /// A new session starts: its first frame is reported again.
    pub fn new_session(&mut self) {
        self.first_frame_sent = false;
        self.control_granted = false;
    }

    fn print(&self, v: Value) {
        if self.enabled {
            // `Output::event` writes one line and flushes; a closed stdout is ignored.
            Output::new(true).event(v, String::new);
        }
    }
}

/// The `recording` event: the session is recorded for the help desk's auditors.
pub fn recording_json(required: bool) -> Value {
    json!({"event": "recording", "required": required})
}

/// The `login` event: the operator's rights from the verified certificate.
pub fn login_json(rights: &OperatorRights) -> Value {
    json!({
        "event": "login",
        "operator": rights.operator,
        "permissions": rights.permission_names(),
        "max_session_secs": rights.max_session_secs,
        "certificate_expires": rights.certificate_expires,
    })
}

/// The `direct` event: connecting straight to a LAN-only agent (instead of `code`), with the
/// operator and expiry of the certificate offered.
pub fn direct_json(address: &str, rights: &OperatorRights) -> Value {
    json!({
        "event": "direct",
        "address": address,
        "operator": rights.operator,
        "certificate_expires": rights.certificate_expires,
    })
}

/// The `agent_key` event: what became of a LAN-only agent's key (`status`: `known`,
/// `remembered`, `accepted_once`, or refused: `unknown`, `declined`, `changed`, `mismatch`),
/// with `stored` (the key stored before, when it differs) and `expected` (`--agent-key`'s key,
/// on a mismatch) when they apply.
pub fn agent_key_json(r: &AgentKeyReport) -> Value {
    let mut v = json!({
        "event": "agent_key",
        "address": r.address,
        "fingerprint": r.fingerprint.to_string(),
        "status": r.status.name(),
        "accepted": r.status.accepted(),
    });
    if let Some(stored) = r.stored {
        v["stored"] = stored.to_string().into();
    }
    if let Some(expected) = r.expected {
        v["expected"] = expected.to_string().into();
    }
    v
}

/// The `agent_key_prompt` event: the window asks the operator about a first connection's key.
pub fn agent_key_prompt_json(address: &str, fingerprint: &str) -> Value {
    json!({"event": "agent_key_prompt", "address": address, "fingerprint": fingerprint})
}

/// The `connected` event, with the operator's own permissions and session time limit.
pub fn connected_json(peer_fingerprint: &str, sas: &str, rights: &OperatorRights) -> Value {
    json!({
        "event": "connected",
        "sas": sas,
        "peer": {"role": "agent", "fingerprint": peer_fingerprint},
        "permissions": rights.permission_names(),
        "max_session_secs": rights.max_session_secs,
    })
}

/// The `consent_pending` event: the customer is asked to allow `what` (`viewing`, `control`).
pub fn consent_json(what: ConsentFor) -> Value {
    json!({"event": "consent_pending", "what": consent_name(what)})
}

/// The `control` event: `granted`, and `revoked` when it takes back an earlier grant; when
/// the agent (not the customer) took control away or refused it, `by: "agent"` and `reason`.
pub fn control_json(change: ControlChange) -> Value {
    let answer = change.answer;
    let mut v =
        json!({"event": "control", "granted": answer.granted(), "revoked": answer.revoked()});
    if let Some(why) = change.withdrawn {
        v["by"] = "agent".into();
        v["reason"] = why.to_string().into();
    }
    v
}

/// The `paused` event: the agent stopped sharing for now, and why.
pub fn paused_json(reason: PauseReason) -> Value {
    json!({"event": "paused", "reason": reason.to_string()})
}

/// The `resumed` event: sharing goes on after a pause.
pub fn resumed_json() -> Value {
    json!({"event": "resumed"})
}

/// The `notice` event: something the operator should know that does not end the session.
pub fn notice_json(message: &str) -> Value {
    json!({"event": "notice", "message": message})
}

/// The line for a change of the connection (`viewer session` without `--json`, and the
/// GUI's notice).
pub fn link_text(event: &ClientEvent) -> Option<String> {
    Some(match event {
        ClientEvent::Reconnecting {
            reason,
            within_secs,
        } => format!(
            "Connection lost ({reason}); reconnecting… (the session ends if it is not back within {within_secs} s)"
        ),
        ClientEvent::Reconnected { sas } => {
            format!("Reconnected: the session goes on (verification code still {sas})")
        }
        _ => return None,
    })
}

/// `{"event":"oidc_browser"}`: the provider's page for a sign-in in the browser, and whether a
/// browser was started on it.
pub fn oidc_browser_json(url: &str, not_opened: &Option<String>) -> Value {
    json!({"event": "oidc_browser", "url": url, "opened": not_opened.is_none(),
           "not_opened": not_opened})
}

/// The JSON object for a client event, for those that have one without earlier context
/// (`control` depends on the previous answer: [`control_json`]).
pub fn event_json(event: &ClientEvent) -> Option<Value> {
    Some(match event {
        ClientEvent::Route(dialed) => sightline_net::cli::route_json(dialed),
        ClientEvent::LoggedIn(rights) => login_json(rights),
        ClientEvent::Direct { address, rights } => direct_json(address, rights),
        ClientEvent::AgentKey(report) => agent_key_json(report),
        ClientEvent::AgentKeyPrompt {
            address,
            fingerprint,
        } => agent_key_prompt_json(address, &fingerprint.to_string()),
        ClientEvent::Code { code, expires_at } => json!({
            "event": "code", "code": code.digits(), "grouped": code.grouped(), "expires_at": expires_at
        }),
        ClientEvent::Connected {
            peer_fingerprint,
            sas,
            rights,
        } => connected_json(peer_fingerprint, sas, rights),
        ClientEvent::Closed { reason, normal, .. } => {
            json!({"event": "closed", "reason": reason, "normal": normal})
        }
        ClientEvent::Failed(message) => json!({"event": "error", "message": message}),
        ClientEvent::ConsentPending(what) => consent_json(*what),
        ClientEvent::Notice(message) => notice_json(message),
        ClientEvent::SharingPaused(reason) => paused_json(*reason),
        ClientEvent::SharingResumed => resumed_json(),
        ClientEvent::Reconnecting {
            reason,
            within_secs,
        } => json!({"event": "reconnecting", "reason": reason, "within_secs": within_secs}),
        ClientEvent::Reconnected { sas } => json!({"event": "reconnected", "sas": sas}),
        ClientEvent::Recording { required } => recording_json(*required),
        ClientEvent::OidcBrowser { url, not_opened } => oidc_browser_json(url, not_opened),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::cert::Permissions;
    use sightline_core::code::SessionCode;
    use sightline_core::messages::{CloseReason, WithdrawReason};

    fn rights() -> OperatorRights {
        OperatorRights {
            operator: "alice".into(),
            permissions: Permissions::VIEW,
            max_session_secs: 1800,
            certificate_expires: 1_700_028_800,
        }
    }

    #[test]
    fn code_event_has_digits_and_grouping() {
        let code: SessionCode = "123 456 7890".parse().expect("valid code");
        let v = event_json(&ClientEvent::Code {
            code,
            expires_at: 1_700_000_000,
        })
        .expect("json");
        assert_eq!(v["event"], "code");
        assert_eq!(v["code"], "1234567890");
        assert_eq!(v["grouped"], "123 456 7890");
        assert_eq!(v["expires_at"], 1_700_000_000u64);
    }

    #[test]
    fn connected_and_closed_events() {
        let v = event_json(&ClientEvent::Connected {
            peer_fingerprint: "ab".repeat(32),
            sas: "42 17 93".into(),
            rights: rights(),
        })
        .expect("json");
        assert_eq!(v["event"], "connected");
        assert_eq!(v["peer"]["role"], "agent");
        assert_eq!(v["peer"]["fingerprint"], "ab".repeat(32));
        assert_eq!(v["sas"], "42 17 93");
        assert_eq!(v["permissions"], json!(["view"]));
        assert_eq!(v["max_session_secs"], 1800);
        let v = event_json(&ClientEvent::Closed {
            reason: "ended by customer".into(),
            normal: true,
            close: Some(CloseReason::EndedByCustomer),
        })
        .expect("json");
        assert_eq!(
            v,
            json!({"event": "closed", "reason": "ended by customer", "normal": true})
        );
        assert!(event_json(&ClientEvent::Status("connecting".into())).is_none());
        let v = event_json(&ClientEvent::Closed {
            reason: CloseReason::TimeLimit.to_string(),
            normal: true,
            close: Some(CloseReason::TimeLimit),
        })
        .expect("json");
        assert_eq!(v["reason"], "session time limit reached");
    }

    #[test]
    fn consent_and_notice_events() {
        assert_eq!(
            event_json(&ClientEvent::ConsentPending(ConsentFor::Viewing)).expect("json"),
            json!({"event": "consent_pending", "what": "viewing"})
        );
        assert_eq!(
            event_json(&ClientEvent::Notice("no".into())).expect("json"),
            json!({"event": "notice", "message": "no"})
        );
        assert!(event_json(&ClientEvent::Control {
            granted: true,
            withdrawn: None
        })
        .is_none());
    }

    #[test]
    fn pause_resume_and_withdrawal_events() {
        assert_eq!(
            event_json(&ClientEvent::SharingPaused(PauseReason::BannerGone)).expect("json"),
            json!({"event": "paused", "reason": "the customer's on-screen banner is gone"})
        );
        assert_eq!(
            event_json(&ClientEvent::SharingResumed).expect("json"),
            json!({"event": "resumed"})
        );
        let withdrawn = ControlChange::new(false, true, Some(WithdrawReason::BannerGone));
        assert_eq!(
            control_json(withdrawn),
            json!({"event": "control", "granted": false, "revoked": true, "by": "agent",
                   "reason": "the customer's on-screen banner was removed"})
        );
        let refused = ControlChange::new(false, false, Some(WithdrawReason::RevokeKeyUnavailable));
        assert_eq!(
            control_json(refused),
            json!({"event": "control", "granted": false, "revoked": false, "by": "agent",
                   "reason": "the customer's revoke hotkey is held by another program"})
        );
        // The window's printer keeps track of whether control was granted.
        let mut printer = JsonEvents::new(false);
        let lines: Vec<Value> = [
            ClientEvent::Control {
                granted: true,
                withdrawn: None,
            },
            ClientEvent::Control {
                granted: false,
                withdrawn: Some(WithdrawReason::BannerGone),
            },
            ClientEvent::SharingPaused(PauseReason::BannerGone),
            ClientEvent::SharingResumed,
        ]
        .iter()
        .filter_map(|e| printer.line(e))
        .collect();
        assert_eq!(
            lines,
            vec![
                json!({"event": "control", "granted": true, "revoked": false}),
                json!({"event": "control", "granted": false, "revoked": true, "by": "agent",
                       "reason": "the customer's on-screen banner was removed"}),
                json!({"event": "paused", "reason": "the customer's on-screen banner is gone"}),
                json!({"event": "resumed"}),
            ]
        );
        // The customer's own revoke has no `by`.
        assert_eq!(
            control_json(ControlChange::new(false, true, None)),
            json!({"event": "control", "granted": false, "revoked": true})
        );
    }

    #[test]
    fn direct_event_has_address_operator_and_expiry() {
        let v = event_json(&ClientEvent::Direct {
            address: "[fe80::1]:7615".into(),
            rights: rights(),
        })
        .expect("json");
        assert_eq!(
            v,
            json!({"event": "direct", "address": "[fe80::1]:7615", "operator": "alice",
                   "certificate_expires": 1_700_028_800u64})
        );
    }

    #[test]
    fn agent_key_events() {
        use crate::agent_key::AgentKeyStatus;
        use sightline_core::identity::Fingerprint;
        let report = AgentKeyReport {
            address: "kiosk.lan:7615".into(),
            fingerprint: Fingerprint([0xbb; 32]),
            status: AgentKeyStatus::Changed,
            stored: Some(Fingerprint([0xaa; 32])),
            expected: None,
        };
        assert_eq!(
            event_json(&ClientEvent::AgentKey(report.clone())).expect("json"),
            json!({"event": "agent_key", "address": "kiosk.lan:7615", "fingerprint": "bb".repeat(32),
                   "status": "changed", "accepted": false, "stored": "aa".repeat(32)})
        );
        let known = AgentKeyReport {
            status: AgentKeyStatus::Known,
            stored: None,
            ..report
        };
        assert_eq!(
            event_json(&ClientEvent::AgentKey(known)).expect("json"),
            json!({"event": "agent_key", "address": "kiosk.lan:7615", "fingerprint": "bb".repeat(32),
                   "status": "known", "accepted": true})
        );
        assert_eq!(
            event_json(&ClientEvent::AgentKeyPrompt {
                address: "kiosk.lan:7615".into(),
                fingerprint: Fingerprint([0xaa; 32]),
            })
            .expect("json"),
            json!({"event": "agent_key_prompt", "address": "kiosk.lan:7615", "fingerprint": "aa".repeat(32)})
        );
    }

    #[test]
    fn login_event_has_the_rights() {
        let v = event_json(&ClientEvent::LoggedIn(rights())).expect("json");
        assert_eq!(
            v,
            json!({"event": "login", "operator": "alice", "permissions": ["view"],
                   "max_session_secs": 1800, "certificate_expires": 1_700_028_800u64})
        );
    }
}

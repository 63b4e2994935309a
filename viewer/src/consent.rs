//! The operator's side of the customer's consent: whether operator input may go out, which of
//! the agent's words on control to believe, and what the operator is told about control and
//! paused sharing.
//!
//! The agent is not trusted blindly. A grant counts only as the answer to a control request
//! this viewer sent and that is still unanswered; a grant out of the blue is ignored. Anything
//! that takes control away (`Control { granted: false }`, a withdrawal, a pause) is always
//! accepted and stops input at once.

use sightline_core::messages::{PauseReason, WithdrawReason};

/// What the agent's answer about control means, given whether control was granted before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAnswer {
    /// The customer allowed control.
    Granted,
    /// The customer (or the agent, for an account without the control permission) said no
    /// to a request.
    Declined,
    /// The customer took back control they had granted.
    Revoked,
}

impl ControlAnswer {
    /// The meaning of `granted` after a previous state of `was_granted`.
    pub fn new(granted: bool, was_granted: bool) -> Self {
        match (granted, was_granted) {
            (true, _) => Self::Granted,
            (false, true) => Self::Revoked,
            (false, false) => Self::Declined,
        }
    }

    /// Whether input may go out now.
    pub fn granted(self) -> bool {
        self == Self::Granted
    }

    /// Whether this takes back an earlier grant.
    pub fn revoked(self) -> bool {
        self == Self::Revoked
    }

    /// One line for the operator.
    pub fn message(self) -> &'static str {
        match self {
            Self::Granted => "The customer allowed control",
            Self::Declined => "The customer declined control",
            Self::Revoked => "The customer took back control",
        }
    }
}

/// A change of control as the operator is told about it: the answer, and why when the agent
/// (not the customer) took control away or refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlChange {
    /// What the change means.
    pub answer: ControlAnswer,
    /// Why the agent withdrew or refused control; `None` for the customer's own answer.
    pub withdrawn: Option<WithdrawReason>,
}

impl ControlChange {
    /// The change to `granted` after a previous state of `was_granted` (a withdrawal reason
    /// only ever goes with a refusal).
    pub fn new(granted: bool, was_granted: bool, withdrawn: Option<WithdrawReason>) -> Self {
        Self {
            answer: ControlAnswer::new(granted, was_granted),
            withdrawn: withdrawn.filter(|_| !granted),
        }
    }

    /// One line for the operator: `Control withdrawn: the customer's on-screen banner was
    /// removed`, or the customer's answer.
    pub fn message(&self) -> String {
        match (self.withdrawn, self.answer) {
            (Some(why), ControlAnswer::Revoked) => format!("Control withdrawn: {why}"),
            (Some(why), _) => format!("Control refused: {why}"),
            (None, answer) => answer.message().to_string(),
        }
    }
}

/// The line for `viewer session` when sharing pauses.
pub fn paused_text(reason: PauseReason) -> String {
    format!("Sharing paused: {reason}")
}

/// The window's notice while sharing is paused.
pub fn paused_notice(reason: PauseReason) -> String {
    format!("Paused: {reason}; sharing resumes when it is back")
}

/// The line for `viewer session` when sharing goes on after a pause.
pub const RESUMED_TEXT: &str = "Sharing resumed";

/// Control ends with a pause: the reason, for an agent that paused without withdrawing
/// control first (it should have; the operator is told all the same).
fn withdraw_reason(reason: PauseReason) -> WithdrawReason {
    match reason {
        PauseReason::BannerGone => WithdrawReason::BannerGone,
    }
}

/// What becomes of a control request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// Send it now.
    Send,
    /// Hold it until the customer has allowed viewing.
    Held,
    /// The certificate does not allow control: send nothing.
    NotPermitted,
}

/// What the dispatcher does with something the agent said about control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlVerdict {
    /// Tell the UI: control is now `granted`; `withdrawn` says why the agent took it away.
    Report {
        /// Whether input is allowed now.
        granted: bool,
        /// Why the agent withdrew or refused control.
        withdrawn: Option<WithdrawReason>,
    },
    /// The `Control { granted: false }` that completes a withdrawal already reported.
    AlreadyReported,
    /// A grant this viewer did not ask for (or already had its answer to): ignored.
    Unrequested,
}

/// The dispatcher's view of consent: whether input may go out, whether a control request is
/// out and unanswered, a request held back while viewing is not allowed yet (the agent answers
/// a request made before that with a refusal), and whether sharing is paused.
#[derive(Debug, Default)]
pub(crate) struct Consent {
    /// The certificate allows control.
    may_control: bool,
    /// The agent's latest accepted word on control said granted.
    granted: bool,
    /// A `ControlRequest` went out and the agent has not answered it.
    outstanding: bool,
    /// Video has arrived, so the customer allowed viewing.
    viewing: bool,
    /// A control request waits for `viewing`.
    held_request: bool,
    /// The agent paused sharing.
    paused: bool,
    /// A withdrawal was reported; the `Control { granted: false }` after it is part of it.
    withdrawal_reported: bool,
}

impl Consent {
    pub(crate) fn new(may_control: bool) -> Self {
        Self {
            may_control,
            ..Default::default()
        }
    }

    /// Whether operator input goes to the agent now.
    pub(crate) fn forwards_input(&self) -> bool {
        self.granted && self.may_control && !self.paused
    }

    /// The operator asks for control.
    pub(crate) fn request(&mut self) -> RequestOutcome {
        if !self.may_control {
            RequestOutcome::NotPermitted
        } else if self.viewing {
            self.outstanding = true;
            RequestOutcome::Send
        } else {
            self.held_request = true;
            RequestOutcome::Held
        }
    }

    /// Video arrived; true when a held control request must go out now.
    pub(crate) fn video(&mut self) -> bool {
        self.viewing = true;
        let send = std::mem::take(&mut self.held_request);
        self.outstanding |= send;
        send
    }

    /// The agent's `Control { granted }`. A grant is believed only as the answer to an
    /// outstanding request; a refusal always is.
    pub(crate) fn control(&mut self, granted: bool) -> ControlVerdict {
        if granted {
            if !std::mem::take(&mut self.outstanding) {
                return ControlVerdict::Unrequested;
            }
            self.withdrawal_reported = false;
            self.granted = true;
            return ControlVerdict::Report {
                granted: true,
                withdrawn: None,
            };
        }
        self.granted = false;
        self.outstanding = false;
        if std::mem::take(&mut self.withdrawal_reported) {
            ControlVerdict::AlreadyReported
        } else {
            ControlVerdict::Report {
                granted: false,
                withdrawn: None,
            }
        }
    }

    /// The agent's `ControlWithdrawn`: input stops now and the operator is told why, without
    /// waiting for the `Control { granted: false }` that should follow.
    pub(crate) fn withdrawn(&mut self, reason: WithdrawReason) -> ControlVerdict {
        self.granted = false;
        self.outstanding = false;
        self.withdrawal_reported = true;
        ControlVerdict::Report {
            granted: false,
            withdrawn: Some(reason),
        }
    }

    /// The agent paused sharing: no input until it resumes. Control still held is withdrawn
    /// (the agent withdraws it first; if it did not, the operator is told here).
    pub(crate) fn pause(&mut self, reason: PauseReason) -> Option<ControlVerdict> {
        self.paused = true;
        self.held_request = false;
        (self.granted || self.outstanding).then(|| self.withdrawn(withdraw_reason(reason)))
    }

    /// Sharing goes on; control must be asked for again.
    pub(crate) fn resume(&mut self) {
        self.paused = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT_GRANTED: ControlVerdict = ControlVerdict::Report {
        granted: true,
        withdrawn: None,
    };
    const REPORT_REFUSED: ControlVerdict = ControlVerdict::Report {
        granted: false,
        withdrawn: None,
    };

    /// Consent with viewing allowed and control granted after a request.
    fn granted() -> Consent {
        let mut c = Consent::new(true);
        assert!(!c.video());
        assert_eq!(c.request(), RequestOutcome::Send);
        assert_eq!(c.control(true), REPORT_GRANTED);
        assert!(c.forwards_input());
        c
    }

    #[test]
    fn control_requests_need_the_control_permission() {
        let mut view_only = Consent::new(false);
        assert_eq!(view_only.request(), RequestOutcome::NotPermitted);
        assert!(
            !view_only.video(),
            "nothing was held for a view-only account"
        );
        assert_eq!(view_only.request(), RequestOutcome::NotPermitted);
        assert_eq!(
            view_only.control(true),
            ControlVerdict::Unrequested,
            "nothing was asked for"
        );
        assert!(!view_only.forwards_input(), "the certificate decides first");

        let mut full = Consent::new(true);
        assert!(!full.video());
        assert_eq!(full.request(), RequestOutcome::Send);
    }

    #[test]
    fn a_request_before_viewing_is_held_until_video_arrives() {
        let mut c = Consent::new(true);
        assert_eq!(c.request(), RequestOutcome::Held);
        assert_eq!(c.request(), RequestOutcome::Held, "still one request");
        assert_eq!(
            c.control(true),
            ControlVerdict::Unrequested,
            "a held request is not out yet"
        );
        assert!(c.video(), "the held request goes out with the first video");
        assert!(!c.video(), "and only once");
        assert_eq!(c.control(true), REPORT_GRANTED, "the answer to it");
        assert!(c.forwards_input());
    }

    #[test]
    fn an_unrequested_grant_is_ignored() {
        let mut c = Consent::new(true);
        assert!(!c.video());
        assert_eq!(c.control(true), ControlVerdict::Unrequested);
        assert!(!c.forwards_input(), "input stays blocked");
        // A request is answered once: a second grant is no answer to anything.
        assert_eq!(c.request(), RequestOutcome::Send);
        assert_eq!(c.control(false), REPORT_REFUSED, "declined");
        assert_eq!(c.control(true), ControlVerdict::Unrequested);
        assert!(!c.forwards_input());
        // After a revocation, a grant needs a new request.
        let mut c = granted();
        assert_eq!(c.control(false), REPORT_REFUSED);
        assert!(!c.forwards_input(), "revoked");
        assert_eq!(c.control(true), ControlVerdict::Unrequested);
        assert!(!c.forwards_input());
    }

    #[test]
    fn a_refusal_is_always_believed() {
        let mut c = Consent::new(true);
        assert_eq!(
            c.control(false),
            REPORT_REFUSED,
            "nothing to take, told all the same"
        );
        let mut c = granted();
        assert_eq!(c.control(false), REPORT_REFUSED);
        assert!(!c.forwards_input());
    }

    #[test]
    fn a_withdrawal_stops_input_and_is_reported_once() {
        let mut c = granted();
        assert_eq!(
            c.withdrawn(WithdrawReason::BannerGone),
            ControlVerdict::Report {
                granted: false,
                withdrawn: Some(WithdrawReason::BannerGone)
            }
        );
        assert!(
            !c.forwards_input(),
            "before the Control message that follows"
        );
        assert_eq!(c.control(false), ControlVerdict::AlreadyReported);
        // The next refusal is a new one.
        assert_eq!(c.control(false), REPORT_REFUSED);
        // A request refused by the agent.
        let mut c = Consent::new(true);
        assert!(!c.video());
        assert_eq!(c.request(), RequestOutcome::Send);
        assert_eq!(
            c.withdrawn(WithdrawReason::RevokeKeyUnavailable),
            ControlVerdict::Report {
                granted: false,
                withdrawn: Some(WithdrawReason::RevokeKeyUnavailable)
            }
        );
        assert_eq!(
            c.control(true),
            ControlVerdict::Unrequested,
            "the request was answered"
        );
    }

    #[test]
    fn a_pause_stops_input_until_the_agent_resumes() {
        let mut c = granted();
        // The agent withdraws control first, then pauses.
        assert!(matches!(
            c.withdrawn(WithdrawReason::BannerGone),
            ControlVerdict::Report { .. }
        ));
        assert_eq!(c.control(false), ControlVerdict::AlreadyReported);
        assert_eq!(
            c.pause(PauseReason::BannerGone),
            None,
            "nothing more to take"
        );
        assert_eq!(c.control(true), ControlVerdict::Unrequested);
        c.resume();
        assert!(!c.forwards_input(), "control must be asked for again");
        assert_eq!(c.request(), RequestOutcome::Send);
        assert_eq!(c.control(true), REPORT_GRANTED);
        assert!(c.forwards_input());

        // An agent that pauses without withdrawing control: withdrawn here.
        let mut c = granted();
        assert_eq!(
            c.pause(PauseReason::BannerGone),
            Some(ControlVerdict::Report {
                granted: false,
                withdrawn: Some(WithdrawReason::BannerGone)
            })
        );
        assert!(!c.forwards_input());
        c.resume();
        assert!(!c.forwards_input());
    }

    #[test]
    fn control_answers_and_texts() {
        assert_eq!(ControlAnswer::new(true, false), ControlAnswer::Granted);
        assert_eq!(ControlAnswer::new(true, true), ControlAnswer::Granted);
        assert_eq!(ControlAnswer::new(false, false), ControlAnswer::Declined);
        assert_eq!(ControlAnswer::new(false, true), ControlAnswer::Revoked);
        assert!(ControlAnswer::Granted.granted());
        assert!(!ControlAnswer::Revoked.granted());
        assert!(ControlAnswer::Revoked.revoked());
        assert!(!ControlAnswer::Declined.revoked());
        assert_eq!(
            ControlAnswer::Granted.message(),
            "The customer allowed control"
        );
        assert_eq!(
            ControlAnswer::Declined.message(),
            "The customer declined control"
        );
        assert_eq!(
            ControlAnswer::Revoked.message(),
            "The customer took back control"
        );
    }

    #[test]
    fn withdrawals_say_why() {
        let c = ControlChange::new(false, true, Some(WithdrawReason::BannerGone));
        assert_eq!(c.answer, ControlAnswer::Revoked);
        assert_eq!(
            c.message(),
            "Control withdrawn: the customer's on-screen banner was removed"
        );
        let c = ControlChange::new(false, false, Some(WithdrawReason::RevokeKeyUnavailable));
        assert_eq!(c.answer, ControlAnswer::Declined);
        assert_eq!(
            c.message(),
            "Control refused: the customer's revoke hotkey is held by another program"
        );
        let c = ControlChange::new(false, true, None);
        assert_eq!(c.message(), "The customer took back control");
        let c = ControlChange::new(true, false, Some(WithdrawReason::BannerGone));
        assert_eq!(c.withdrawn, None, "a grant has no withdrawal reason");
        assert_eq!(c.message(), "The customer allowed control");
        assert_eq!(
            paused_text(PauseReason::BannerGone),
            "Sharing paused: the customer's on-screen banner is gone"
        );
        assert_eq!(
            paused_notice(PauseReason::BannerGone),
            "Paused: the customer's on-screen banner is gone; sharing resumes when it is back"
        );
        assert_eq!(RESUMED_TEXT, "Sharing resumed");
    }
}

//! Where control of the keyboard and mouse stands in one session, as a small state machine
//! with no I/O: the operator asks, the customer answers (or the kiosk's configuration does),
//! the customer takes it back, a question times out, the agent withdraws it. Each call says
//! what the caller must do; the caller owns the injector, the terminal and the wire.
//!
//! ```text
//!            request            yes                 revoke / withdraw
//!   None ─────────────▶ Asked ──────▶ Granted ─────────────────────▶ None
//!     ▲                   │ no, timeout, revoke, withdraw
//!     └───────────────────┘
//! ```
//!
//! Control is granted only with the `control` permission, and only while the customer has a
//! way to take it back (the revoke hotkey, or a terminal); see [`ControlState::request`].

use std::time::{Duration, Instant};

/// Where control stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The operator has no control and no question is open.
    None,
    /// The customer is being asked since this moment.
    Asked(Instant),
    /// The operator controls keyboard and mouse.
    Granted,
}

/// Why a control request is refused without asking the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The operator's certificate does not allow control.
    NotPermitted,
    /// The customer could not take control back: the revoke hotkey is not available and there
    /// is no terminal to type `r` in (or, on a kiosk, nobody at one).
    NoWayBack,
    /// Sharing is paused (the banner is gone): nothing may be controlled until it is back.
    Paused,
}

/// What the caller does about a control request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRequest {
    /// Ask the customer (tell the viewer the question is pending).
    Ask,
    /// Unattended: start injecting and tell the viewer it is granted.
    Grant,
    /// Tell the viewer no.
    Refuse(Refusal),
    /// Already asked or granted: nothing changes.
    Ignore,
}

/// What the caller does when control ends or a question closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEnd {
    /// Stop injecting at once and tell the viewer control is gone.
    StopInput,
    /// Close the open question with a no.
    Decline,
    /// Nothing was granted or asked.
    Nothing,
}

/// The control state of one session.
#[derive(Debug, Clone)]
pub struct ControlState {
    stage: Stage,
    may_control: bool,
    unattended: bool,
    answer_within: Duration,
}

impl ControlState {
    /// No control yet. `may_control`: the certificate allows it; `unattended`: a kiosk, whose
    /// configuration answers for the customer; `answer_within`: how long a question stays open.
    pub fn new(may_control: bool, unattended: bool, answer_within: Duration) -> Self {
        Self {
            stage: Stage::None,
            may_control,
            unattended,
            answer_within,
        }
    }

    /// Where control stands now.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether the operator controls keyboard and mouse now.
    pub fn is_granted(&self) -> bool {
        self.stage == Stage::Granted
    }

    /// The operator asks for control. `way_back`: the customer can take control back now (the
    /// revoke hotkey is grabbed, or an attended terminal is open); `paused`: sharing is paused.
    pub fn request(&mut self, now: Instant, way_back: bool, paused: bool) -> OnRequest {
        if !self.may_control {
            return OnRequest::Refuse(Refusal::NotPermitted);
        }
        match self.stage {
            Stage::Asked(_) | Stage::Granted => OnRequest::Ignore,
            Stage::None if paused => OnRequest::Refuse(Refusal::Paused),
            Stage::None if !way_back => OnRequest::Refuse(Refusal::NoWayBack),
            Stage::None if self.unattended => OnRequest::Grant,
            Stage::None => {
                self.stage = Stage::Asked(now);
                OnRequest::Ask
            }
        }
    }

    /// The customer answered the open question; `false` when there is none (the answer is
    /// then not about control).
    pub fn is_asking(&self) -> bool {
        matches!(self.stage, Stage::Asked(_))
    }

    /// The customer's answer to the open question: `true` when the caller should now start
    /// injecting (and report the grant with [`ControlState::started`]).
    pub fn answer(&mut self, allowed: bool) -> bool {
        if !self.is_asking() {
            return false;
        }
        self.stage = Stage::None;
        allowed
    }

    /// Injection started: the operator has control.
    pub fn started(&mut self) {
        self.stage = Stage::Granted;
    }

    /// The customer takes control back, or the agent withdraws it (banner gone, revoke key
    /// lost, session ending).
    pub fn revoke(&mut self) -> OnEnd {
        let was = std::mem::replace(&mut self.stage, Stage::None);
        match was {
            Stage::Granted => OnEnd::StopInput,
            Stage::Asked(_) => OnEnd::Decline,
            Stage::None => OnEnd::Nothing,
        }
    }

    /// When the open question times out, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Asked(since) => Some(since + self.answer_within),
            _ => None,
        }
    }

    /// Closes the question if its time is up at `now`; true when it did (tell the viewer no).
    pub fn expire(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => {
                self.stage = Stage::None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(60);

    fn attended() -> ControlState {
        ControlState::new(true, false, WAIT)
    }

    #[test]
    fn a_request_is_a_question_and_a_yes_grants() {
        let t0 = Instant::now();
        let mut c = attended();
        assert_eq!(c.request(t0, true, false), OnRequest::Ask);
        assert_eq!(c.stage(), Stage::Asked(t0));
        assert_eq!(c.deadline(), Some(t0 + WAIT));
        // Asking again changes nothing while the customer thinks.
        assert_eq!(c.request(t0, true, false), OnRequest::Ignore);
        assert!(c.answer(true));
        c.started();
        assert!(c.is_granted());
        assert_eq!(c.deadline(), None);
        assert_eq!(c.request(t0, true, false), OnRequest::Ignore);
    }

    #[test]
    fn a_no_or_silence_leaves_no_control() {
        let t0 = Instant::now();
        let mut c = attended();
        c.request(t0, true, false);
        assert!(!c.answer(false));
        assert_eq!(c.stage(), Stage::None);
        // Silence: the question closes at its deadline, not before.
        c.request(t0, true, false);
        assert!(!c.expire(t0 + WAIT - Duration::from_millis(1)));
        assert!(c.expire(t0 + WAIT));
        assert_eq!(c.stage(), Stage::None);
        assert!(!c.expire(t0 + WAIT * 2), "nothing left to expire");
    }

    #[test]
    fn an_answer_without_a_question_grants_nothing() {
        let mut c = attended();
        assert!(!c.answer(true));
        assert_eq!(c.stage(), Stage::None);
    }

    #[test]
    fn revoke_stops_input_or_closes_the_question() {
        let t0 = Instant::now();
        let mut c = attended();
        assert_eq!(c.revoke(), OnEnd::Nothing);
        c.request(t0, true, false);
        assert_eq!(c.revoke(), OnEnd::Decline);
        c.request(t0, true, false);
        c.answer(true);
        c.started();
        assert_eq!(c.revoke(), OnEnd::StopInput);
        assert_eq!(c.stage(), Stage::None);
        // Asking again is a new question.
        assert_eq!(c.request(t0, true, false), OnRequest::Ask);
    }

    #[test]
    fn refusals_come_before_any_question() {
        let t0 = Instant::now();
        let mut view_only = ControlState::new(false, false, WAIT);
        assert_eq!(
            view_only.request(t0, true, false),
            OnRequest::Refuse(Refusal::NotPermitted)
        );
        let mut c = attended();
        assert_eq!(
            c.request(t0, false, false),
            OnRequest::Refuse(Refusal::NoWayBack)
        );
        assert_eq!(
            c.request(t0, true, true),
            OnRequest::Refuse(Refusal::Paused)
        );
        assert_eq!(c.stage(), Stage::None);
    }

    #[test]
    fn a_kiosk_grants_without_asking_but_not_without_a_way_back() {
        let t0 = Instant::now();
        let mut k = ControlState::new(true, true, WAIT);
        assert_eq!(
            k.request(t0, false, false),
            OnRequest::Refuse(Refusal::NoWayBack)
        );
        assert_eq!(k.request(t0, true, false), OnRequest::Grant);
        k.started();
        assert!(k.is_granted());
        assert_eq!(k.revoke(), OnEnd::StopInput);
    }
}

//! Pacing: which recording time is "now" and when a record is due, at a playback speed.
//! Pure arithmetic on an anchor (a recording time and the instant it was shown), so that the
//! playback thread and the timeline agree and the tests need no sleeping. Speeds are exact
//! ratios (½, 1, 2, 4, 8), so times are integers and never drift by rounding.

use std::time::{Duration, Instant};

/// A playback speed the controls offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Speed {
    /// 0.5×.
    Half,
    /// 1×.
    #[default]
    Normal,
    /// 2×.
    Double,
    /// 4×.
    Quadruple,
    /// 8×.
    Octuple,
}

impl Speed {
    /// Every speed, slowest first (the order of the buttons).
    pub const ALL: [Speed; 5] = [
        Speed::Half,
        Speed::Normal,
        Speed::Double,
        Speed::Quadruple,
        Speed::Octuple,
    ];

    /// Recording time per wall-clock time as `(numerator, denominator)`.
    fn ratio(self) -> (u128, u128) {
        match self {
            Speed::Half => (1, 2),
            Speed::Normal => (1, 1),
            Speed::Double => (2, 1),
            Speed::Quadruple => (4, 1),
            Speed::Octuple => (8, 1),
        }
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            Speed::Half => "0.5×",
            Speed::Normal => "1×",
            Speed::Double => "2×",
            Speed::Quadruple => "4×",
            Speed::Octuple => "8×",
        }
    }

    /// Recording microseconds that pass in `wall`.
    pub fn recording_us(self, wall: Duration) -> u64 {
        let (num, den) = self.ratio();
        saturate(wall.as_micros() * num / den)
    }

    /// Wall-clock time in which `recording_us` pass.
    pub fn wall(self, recording_us: u64) -> Duration {
        let (num, den) = self.ratio();
        Duration::from_micros(saturate(u128::from(recording_us) * den / num))
    }
}

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Where playback stands: recording time `at_us` was reached at `since`, and time runs on
/// from there at `speed` while `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayClock {
    at_us: u64,
    since: Instant,
    speed: Speed,
    running: bool,
}

impl PlayClock {
    /// Stopped at `at_us`.
    pub fn stopped(at_us: u64, speed: Speed, now: Instant) -> Self {
        Self {
            at_us,
            since: now,
            speed,
            running: false,
        }
    }

    /// Whether time runs.
    pub fn running(&self) -> bool {
        self.running
    }

    /// The speed.
    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// The recording time at `now` (never before the anchor, whatever `now` is).
    pub fn position(&self, now: Instant) -> u64 {
        if !self.running {
            return self.at_us;
        }
        let elapsed = now.saturating_duration_since(self.since);
        self.at_us.saturating_add(self.speed.recording_us(elapsed))
    }

    /// When recording time `at_us` is reached: `None` while stopped; the anchor's instant for
    /// a time at or before the anchor (due at once).
    pub fn due(&self, at_us: u64) -> Option<Instant> {
        if !self.running {
            return None;
        }
        let ahead = self.speed.wall(at_us.saturating_sub(self.at_us));
        Some(self.since.checked_add(ahead).unwrap_or(self.since))
    }

    /// Starts (or keeps) time running from where it is at `now`.
    pub fn play(&mut self, now: Instant) {
        *self = Self {
            at_us: self.position(now),
            since: now,
            speed: self.speed,
            running: true,
        };
    }

    /// Stops time where it is at `now`.
    pub fn pause(&mut self, now: Instant) {
        *self = Self::stopped(self.position(now), self.speed, now);
    }

    /// Changes the speed from `now` on, without a jump in position.
    pub fn set_speed(&mut self, speed: Speed, now: Instant) {
        let running = self.running;
        *self = Self::stopped(self.position(now), speed, now);
        self.running = running;
    }

    /// Moves to `at_us` (a seek), shown at `now`; running or not as before.
    pub fn jump(&mut self, at_us: u64, now: Instant) {
        let running = self.running;
        *self = Self::stopped(at_us, self.speed, now);
        self.running = running;
    }

    /// Playback is late: a record due at `due_at_us` is only shown at `now`. When that is
    /// more than `tolerance` late (the decoder cannot keep up at this speed), the clock is
    /// moved back so that the timeline shows what is on screen instead of running away from
    /// it; playback then goes on at the pace the decoder manages.
    pub fn catch_up(&mut self, due_at_us: u64, now: Instant, tolerance: Duration) -> bool {
        let Some(due) = self.due(due_at_us) else {
            return false;
        };
        if now.saturating_duration_since(due) <= tolerance {
            return false;
        }
        self.jump(due_at_us, now);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn speeds_are_exact_ratios() {
        assert_eq!(Speed::Half.recording_us(Duration::from_secs(2)), 1_000_000);
        assert_eq!(
            Speed::Octuple.recording_us(Duration::from_secs(1)),
            8_000_000
        );
        assert_eq!(Speed::Half.wall(1_000_000), Duration::from_secs(2));
        assert_eq!(Speed::Quadruple.wall(1_000_000), 250 * MS);
        assert_eq!(
            Speed::Normal.wall(u64::MAX),
            Duration::from_micros(u64::MAX)
        );
        assert_eq!(Speed::Half.wall(u64::MAX), Duration::from_micros(u64::MAX));
        let labels: Vec<_> = Speed::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["0.5×", "1×", "2×", "4×", "8×"]);
    }

    #[test]
    fn a_running_clock_maps_recording_time_to_instants_and_back() {
        let t0 = Instant::now();
        let mut c = PlayClock::stopped(3_000_000, Speed::Normal, t0);
        assert_eq!(c.position(t0 + 500 * MS), 3_000_000, "stopped: time stands");
        assert_eq!(c.due(3_100_000), None);
        c.play(t0);
        assert_eq!(c.position(t0 + 500 * MS), 3_500_000);
        assert_eq!(c.due(3_100_000), Some(t0 + 100 * MS));
        assert_eq!(c.due(1_000_000), Some(t0), "the past is due at once");
        // An instant before the anchor does not go back in the recording.
        assert_eq!(c.position(t0.checked_sub(MS).unwrap_or(t0)), 3_000_000);
    }

    #[test]
    fn speed_changes_keep_the_position() {
        let t0 = Instant::now();
        let mut c = PlayClock::stopped(0, Speed::Normal, t0);
        c.play(t0);
        c.set_speed(Speed::Quadruple, t0 + 1000 * MS);
        assert_eq!(c.position(t0 + 1000 * MS), 1_000_000);
        assert_eq!(c.position(t0 + 1500 * MS), 3_000_000);
        assert_eq!(c.due(5_000_000), Some(t0 + 2000 * MS));
        c.pause(t0 + 1500 * MS);
        assert!(!c.running());
        assert_eq!(c.position(t0 + 9000 * MS), 3_000_000);
        c.set_speed(Speed::Half, t0 + 9000 * MS);
        assert!(!c.running(), "a speed change does not start playback");
        c.play(t0 + 10_000 * MS);
        assert_eq!(c.position(t0 + 12_000 * MS), 4_000_000);
        c.jump(500_000, t0 + 12_000 * MS);
        assert!(c.running());
        assert_eq!(c.position(t0 + 14_000 * MS), 1_500_000);
    }

    #[test]
    fn a_late_decoder_pulls_the_clock_back() {
        let t0 = Instant::now();
        let mut c = PlayClock::stopped(0, Speed::Octuple, t0);
        c.play(t0);
        // Due at 100 ms, shown at 150 ms: within tolerance, the clock stays.
        assert!(!c.catch_up(800_000, t0 + 150 * MS, 100 * MS));
        assert_eq!(c.position(t0 + 150 * MS), 1_200_000);
        // Shown at 500 ms: the clock restarts from the late record.
        assert!(c.catch_up(800_000, t0 + 500 * MS, 100 * MS));
        assert_eq!(c.position(t0 + 500 * MS), 800_000);
        assert_eq!(c.speed(), Speed::Octuple);
    }
}

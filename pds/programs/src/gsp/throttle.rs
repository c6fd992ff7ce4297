//! How often the gsp PD boots a crashed firmware again: a *rate*, as systemd's
//! `StartLimitBurst`/`StartLimitIntervalSec` and Hubris's restart throttling. A firmware that
//! crashes now and then is booted again every time, for ever; one that crashes on every boot
//! (a crash loop) is given up on once [`MAX_REBOOTS`] reboots fall within [`WINDOW_NS`], so the
//! PD does not spend itself booting it. Giving up is final for the PD instance (a restarted gsp,
//! the supervisor's business, starts with a fresh budget).

/// Reboots allowed within [`WINDOW_NS`].
pub const MAX_REBOOTS: usize = 3;
/// TIMEOUT: the window (10 s, systemd's default `StartLimitIntervalSec`): a GSP boot takes
/// about 100 ms, so a crash loop reaches the limit in well under a second, while a firmware that
/// crashes at most every few seconds is always booted again.
pub const WINDOW_NS: u64 = 10_000_000_000;

/// The times of the recent reboots.
#[derive(Debug, Default)]
pub struct Throttle {
    recent: heapless::Deque<u64, MAX_REBOOTS>,
    gave_up: bool,
}

impl Throttle {
    /// Whether a reboot at `now_ns` may go ahead; if so it is counted.
    pub fn allow(&mut self, now_ns: u64) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|&t| now_ns.saturating_sub(t) >= WINDOW_NS)
        {
            self.recent.pop_front();
        }
        self.gave_up |= self.recent.push_back(now_ns).is_err();
        !self.gave_up
    }

    /// Reboots counted within the window ending at the last [`Throttle::allow`].
    pub fn recent(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn crashes_spread_over_time_are_always_rebooted() {
        let mut t = Throttle::default();
        // Far more than MAX_REBOOTS crashes, each a few seconds apart.
        for i in 0..20u64 {
            assert!(t.allow(i * 4 * S), "reboot {i}");
        }
        assert!(t.recent() <= MAX_REBOOTS);
    }

    #[test]
    fn a_crash_loop_is_given_up_on_for_good() {
        let mut t = Throttle::default();
        for i in 0..MAX_REBOOTS as u64 {
            assert!(t.allow(i * S / 10), "reboot {i}");
        }
        assert!(!t.allow(S / 2), "one too many within the window");
        // Final: the window passing does not revive it.
        assert!(!t.allow(100 * S));
    }

    #[test]
    fn the_window_slides() {
        let mut t = Throttle::default();
        assert!(t.allow(0));
        assert!(t.allow(WINDOW_NS - 2));
        assert!(t.allow(WINDOW_NS - 1));
        // The first has left the window by now: three within it again, allowed.
        assert!(t.allow(WINDOW_NS));
        assert_eq!(t.recent(), MAX_REBOOTS);
        assert!(!t.allow(WINDOW_NS + 1));
    }
}

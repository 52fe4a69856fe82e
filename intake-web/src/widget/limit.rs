//! A sliding-window counter per client address: how the widget limits chat starts from one
//! address. In-process: each server of a cluster counts on its own, so the cluster-wide limit is
//! this times the number of servers (messages within a chat are limited in the core, from the
//! stored messages, and hold cluster-wide).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Window {
    max: usize,
    per: Duration,
    seen: Mutex<HashMap<Option<IpAddr>, VecDeque<Instant>>>,
}

impl Default for Window {
    /// Five chats per address per ten minutes.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(600))
    }
}

impl Window {
    pub fn new(max: usize, per: Duration) -> Self {
        Self { max, per, seen: Mutex::default() }
    }

    /// Counts one attempt from `addr` at `now`; `false` when the window is full (the attempt is
    /// not counted then).
    pub fn admit(&self, addr: Option<IpAddr>, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget addresses whose attempts are all old, so the map does not grow without bound.
        if seen.len() > 10_000 {
            seen.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.per));
        }
        let times = seen.entry(addr).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.per) {
            times.pop_front();
        }
        if times.len() >= self.max {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_until_it_slides() {
        let w = Window::new(2, Duration::from_secs(60));
        let t = Instant::now();
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        assert!(w.admit(a, t));
        assert!(w.admit(a, t + Duration::from_secs(1)));
        assert!(!w.admit(a, t + Duration::from_secs(2)));
        assert!(w.admit(b, t + Duration::from_secs(2)), "per address");
        assert!(w.admit(a, t + Duration::from_secs(61)), "the first attempt left the window");
    }
}

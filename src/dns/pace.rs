//! The DNS rate limit (`--dns-rate`): queries leave at most N a second.
//!
//! Public blocklists throttle and then block heavy users, and a site's own
//! resolver is shared with everything else on the network. The pacer hands
//! out evenly spaced departure slots; a query waits for its slot. Memory is
//! one instant, however many queries wait.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    /// Time between two queries; `None` = no limit.
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// At most `per_second` queries a second; 0 means no limit.
    pub fn new(per_second: u32) -> Pacer {
        Pacer {
            interval: (per_second > 0).then(|| Duration::from_secs(1) / per_second),
            next: Mutex::new(None),
        }
    }

    /// Wait for this query's slot.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            // A poisoned lock only means another query panicked mid-update;
            // the instant inside is still a valid slot.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_queries_evenly() {
        let pacer = Pacer::new(10);
        let start = Instant::now();
        for _ in 0..21 {
            pacer.wait().await;
        }
        // The first leaves at once, the next 20 at 100 ms intervals.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_for_a_burst() {
        let pacer = Pacer::new(10);
        pacer.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_is_unlimited() {
        let pacer = Pacer::new(0);
        let start = Instant::now();
        for _ in 0..1000 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}

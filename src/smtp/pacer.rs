//! `--rate`: connection starts per second, evenly spaced. Every
//! connection of a run waits its turn here before it is dialled (a host
//! opens up to three), so the rate counts connections, not hosts.
//!
//! No token bucket and so no bursts: each start is one interval after the
//! previous one, and time lost while the engine waited for a free slot is not
//! made up later (that would be a burst). Built on tokio's clock, so tests run
//! it on a paused clock.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The run's one pacer, shared by every probe: each dial takes the next
/// turn, in the order asked (tokio's mutex is fair).
#[derive(Debug, Clone)]
pub struct Pace(Arc<tokio::sync::Mutex<Pacer>>);

impl Pace {
    /// `rate` connection starts per second (positive and finite).
    pub fn new(rate: f64) -> Self {
        Pace(Arc::new(tokio::sync::Mutex::new(Pacer::new(rate))))
    }

    /// Wait for this connection's turn.
    pub async fn turn(&self) {
        self.0.lock().await.wait().await;
    }
}

#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    /// `rate` starts per second (must be positive and finite).
    pub fn new(rate: f64) -> Self {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: None,
        }
    }

    /// Wait until the next start is due.
    pub async fn wait(&mut self) {
        let now = Instant::now();
        if let Some(next) = self.next {
            if next > now {
                tokio::time::sleep_until(next).await;
            }
        }
        let base = self.next.map_or(now, |n| n.max(now));
        self.next = Some(base + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_its_rate() {
        let mut pacer = Pacer::new(100.0);
        let start = Instant::now();
        let mut gaps = Vec::new();
        let mut last = start;
        for _ in 0..500 {
            pacer.wait().await;
            let now = Instant::now();
            gaps.push(now - last);
            last = now;
        }
        // 500 starts at 100/s: the first at once, then one every 10 ms.
        assert_eq!(last - start, Duration::from_millis(4990));
        assert!(
            gaps[1..].iter().all(|g| *g == Duration::from_millis(10)),
            "uneven: {:?}",
            &gaps[..5]
        );
    }

    /// Many probes asking at once still get evenly spaced turns.
    #[tokio::test(start_paused = true)]
    async fn shared_turns_are_evenly_spaced() {
        let pace = Pace::new(10.0);
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let pace = pace.clone();
            tasks.spawn(async move {
                pace.turn().await;
                Instant::now()
            });
        }
        let mut starts: Vec<Instant> = tasks.join_all().await;
        starts.sort();
        assert_eq!(starts[29] - start, Duration::from_millis(2900));
        assert!(starts
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_millis(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_not_followed_by_a_burst() {
        let mut pacer = Pacer::new(10.0);
        pacer.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let t0 = Instant::now();
        pacer.wait().await;
        pacer.wait().await;
        pacer.wait().await;
        assert_eq!(Instant::now() - t0, Duration::from_millis(200));
    }
}

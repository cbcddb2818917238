//! One timer per connection for the deadlines of its reads and writes.
//!
//! Every read and write of a connection has a deadline (the read timeout
//! from its start, or the host's deadline if that comes first). A fresh
//! `tokio::time::timeout_at` per step costs, each time the step has to
//! wait, a timer registered in the runtime's wheel and taken out again (a
//! lock each way), and a clone of the runtime's handle (an atomic count
//! the worker threads share). A step that waits is the common case: every
//! reply is waited for.
//!
//! A [`StepTimer`] keeps one `Sleep`, made the first time a step waits.
//! Later steps leave it where it is when it would fire no later than their
//! own deadline; when it fires early, the step's deadline has not passed,
//! and the timer is moved on to it (once per read timeout, on a connection
//! that lives that long). A step whose deadline is earlier than the timer
//! (the host deadline draws near) moves it back. A step thus ends with
//! [`Elapsed`] exactly when `timeout_at` would have ended it: at its own
//! deadline, not before.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use tokio::time::{sleep_until, Instant, Sleep};

/// The step's deadline passed before it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// The one timer of a connection (see the module's documentation).
#[derive(Debug, Default)]
pub struct StepTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl StepTimer {
    /// Run `step` until it is done or `until` has passed.
    pub async fn run<F: Future>(&mut self, until: Instant, step: F) -> Result<F::Output, Elapsed> {
        let mut step = pin!(step);
        poll_fn(|cx| {
            if let Poll::Ready(done) = step.as_mut().poll(cx) {
                return Poll::Ready(Ok(done));
            }
            let sleep = match &mut self.sleep {
                Some(sleep) => {
                    if sleep.deadline() > until {
                        sleep.as_mut().reset(until);
                    }
                    sleep
                }
                None => self.sleep.insert(Box::pin(sleep_until(until))),
            };
            loop {
                match sleep.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // Fired at or after `until`: the step is out of time.
                    Poll::Ready(()) if sleep.deadline() >= until => {
                        return Poll::Ready(Err(Elapsed))
                    }
                    // Fired at an earlier step's deadline: on to this one's.
                    Poll::Ready(()) => sleep.as_mut().reset(until),
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A step that takes `secs` seconds, run until `until`.
    async fn step_of(timer: &mut StepTimer, until: Instant, secs: u64) -> Result<(), Elapsed> {
        timer
            .run(until, tokio::time::sleep(Duration::from_secs(secs)))
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_done_in_time_is_not_cut() {
        let mut timer = StepTimer::default();
        let until = Instant::now() + Duration::from_secs(10);
        let done = timer
            .run(until, async {
                tokio::time::sleep(Duration::from_secs(9)).await;
                7
            })
            .await;
        assert_eq!(done, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_ends_at_its_own_deadline_not_an_earlier_steps() {
        let mut timer = StepTimer::default();
        let start = Instant::now();
        // The first step waits, so the timer is set to its deadline (10 s).
        let first = step_of(&mut timer, start + Duration::from_secs(10), 4).await;
        assert_eq!(first, Ok(()));
        // The second step's deadline is 4 + 10 s: the timer, still set for
        // 10 s, fires first and must not end it.
        let second_until = Instant::now() + Duration::from_secs(10);
        assert_eq!(step_of(&mut timer, second_until, 9).await, Ok(()));
        assert_eq!(Instant::now() - start, Duration::from_secs(13));
        // A third step that never ends is cut at its own deadline.
        let third_until = Instant::now() + Duration::from_secs(10);
        let third = timer.run(third_until, std::future::pending::<()>()).await;
        assert_eq!(third, Err(Elapsed));
        assert_eq!(Instant::now(), third_until);
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_the_timer_back() {
        let mut timer = StepTimer::default();
        let start = Instant::now();
        let first = step_of(&mut timer, start + Duration::from_secs(10), 1).await;
        assert_eq!(first, Ok(()));
        // The host deadline, 2 s from the start, comes before the timer.
        let cut = timer
            .run(start + Duration::from_secs(2), std::future::pending::<()>())
            .await;
        assert_eq!(cut, Err(Elapsed));
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_already_out_of_time_is_cut_at_once() {
        let mut timer = StepTimer::default();
        let past = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        let cut = timer.run(past, std::future::pending::<()>()).await;
        assert_eq!(cut, Err(Elapsed));
        // But a step that is ready is done, as with `timeout_at`.
        assert_eq!(timer.run(past, async { 1 }).await, Ok(1));
    }
}

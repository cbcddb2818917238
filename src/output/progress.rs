//! The progress bar of `scan` on a terminal (indicatif): a bar over the
//! known number of jobs, a rate a person can read (`161 hosts/s`, not
//! `161.4883/s`), and an ETA that says the scan waits on slow hosts instead
//! of reading `0s` while they run.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::fmt::Write;
use std::time::Duration;

/// Below this estimate with jobs still open, the rate no longer predicts the
/// end: what is left are hosts in flight, each finishing when it answers or
/// at `--host-timeout`.
const WAITING_BELOW: Duration = Duration::from_secs(2);

/// The bar's template: with colour, the bar in cyan.
pub fn template(color: bool) -> &'static str {
    if color {
        "{spinner} {elapsed_precise} [{wide_bar:.cyan/blue}] {pos}/{len} hosts  {rate}  {eta_text}  {msg}"
    } else {
        "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} hosts  {rate}  {eta_text}  {msg}"
    }
}

/// Hosts per second, rounded for reading: whole above 10, else to one or two
/// significant decimals; a dash before the first host is done.
pub fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "- hosts/s".into()
    } else if per_sec >= 9.95 {
        format!("{per_sec:.0} hosts/s")
    } else if per_sec >= 0.995 {
        format!("{per_sec:.1} hosts/s")
    } else {
        format!("{per_sec:.2} hosts/s")
    }
}

/// What is left, in words: `ETA 1m 05s`; `waiting on 3 hosts` when the
/// rate says the end is near but jobs are still open (slow hosts run to
/// their timeout); `ETA ?` before any host is done; `done` at the end.
pub fn eta_text(remaining: u64, per_sec: f64) -> String {
    if remaining == 0 {
        return "done".into();
    }
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "ETA ?".into();
    }
    let secs = remaining as f64 / per_sec;
    if secs < WAITING_BELOW.as_secs_f64() {
        let s = if remaining == 1 { "" } else { "s" };
        return format!("waiting on {remaining} host{s}");
    }
    // Whole seconds: a sub-second part only flickers.
    let secs = secs.round().min(1e9) as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("ETA {h}h {m:02}m")
    } else if m > 0 {
        format!("ETA {m}m {s:02}s")
    } else {
        format!("ETA {s}s")
    }
}

/// The style, with the `rate` and `eta_text` keys.
pub fn style(color: bool) -> ProgressStyle {
    ProgressStyle::with_template(template(color))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key("rate", |s: &ProgressState, w: &mut dyn Write| {
            let _ = w.write_str(&rate_text(s.per_sec()));
        })
        .with_key("eta_text", |s: &ProgressState, w: &mut dyn Write| {
            let remaining = s.len().unwrap_or(0).saturating_sub(s.pos());
            let _ = w.write_str(&eta_text(remaining, s.per_sec()));
        })
}

/// A bar on standard error over `total` jobs, `done` of them already done
/// (a resumed scan).
pub fn bar(total: u128, done: u128, color: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stderr(),
    );
    pb.set_style(style(color));
    pb.set_position(u64::try_from(done).unwrap_or(u64::MAX));
    pb.reset_eta();
    pb.set_message("relays: 0");
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_for_reading() {
        assert_eq!(rate_text(161.4883), "161 hosts/s");
        assert_eq!(rate_text(10.2), "10 hosts/s");
        assert_eq!(rate_text(9.96), "10 hosts/s");
        assert_eq!(rate_text(3.04), "3.0 hosts/s");
        assert_eq!(rate_text(0.25), "0.25 hosts/s");
        assert_eq!(rate_text(0.0), "- hosts/s");
        assert_eq!(rate_text(f64::NAN), "- hosts/s");
        assert_eq!(rate_text(f64::INFINITY), "- hosts/s");
    }

    #[test]
    fn the_eta_never_reads_zero_while_hosts_run() {
        // The case: a fast rate, a few slow hosts left.
        assert_eq!(eta_text(3, 161.4883), "waiting on 3 hosts");
        assert_eq!(eta_text(1, 161.0), "waiting on 1 host");
        // Nothing done yet: no rate, no guess.
        assert_eq!(eta_text(500, 0.0), "ETA ?");
        assert_eq!(eta_text(0, 5.0), "done");
        assert_eq!(eta_text(100, 10.0), "ETA 10s");
        assert_eq!(eta_text(650, 10.0), "ETA 1m 05s");
        assert_eq!(eta_text(16_777_216, 1000.0), "ETA 4h 39m");
        for (left, rate) in [(1, 1e6), (2, 0.001), (7, 3.0), (10_000, 1e-3)] {
            let text = eta_text(left, rate);
            assert!(!text.contains(" 0s"), "{left} at {rate}/s: {text}");
        }
    }

    #[test]
    fn the_template_parses_with_our_keys() {
        for color in [false, true] {
            assert!(ProgressStyle::with_template(template(color)).is_ok());
            assert!(template(color).contains("{wide_bar"));
            assert!(template(color).contains("{rate}"));
            assert!(template(color).contains("{eta_text}"));
            assert!(template(color).contains("{len}"));
        }
        assert!(!template(false).contains(".cyan"));
    }
}

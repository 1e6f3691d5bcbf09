//! Detecting a change of the input load inside the window. A window that
//! straddles a step in load averages the old and the new rate, and sizing
//! on that average takes several rescales to meet the step. The window is
//! split where the per-report input rates differ most; when the two sides
//! differ significantly (a t statistic over the pooled noise) and by enough
//! to matter, the rate after the change is the one to size for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::window::Interval;

/// How many standard errors apart the two sides must be: well above what
/// noise gives over the ~30 possible split points of a window.
pub const SIGNIFICANCE: f64 = 5.0;

/// The t statistic of a difference without any noise (kept finite so that
/// it serializes).
const NOISELESS_T: f64 = 1e6;

/// Fewest reports on either side of a change.
const MIN_SIDE: usize = 3;

/// A change of input rate found in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadChange {
    /// When the reports after the change begin.
    pub at: DateTime<Utc>,
    /// Input rate before and after, in records/s.
    pub rate_before: f64,
    pub rate_after: f64,
    /// Seconds of reports after the change.
    pub secs_after: f64,
    /// The difference in standard errors.
    pub t: f64,
}

/// The most significant split of a stage's per-report input rates, if it is
/// significant and its relative size is at least `material`.
/// `starts[i]` is when interval `i` begins.
pub fn detect(
    stage: u32,
    intervals: &[Interval],
    starts: &[DateTime<Utc>],
    material: f64,
) -> Option<LoadChange> {
    let (rates, weights): (Vec<f64>, Vec<(f64, f64)>) = intervals
        .iter()
        .map(|i| {
            let a = i.arrived.get(&stage).copied().unwrap_or(0.0);
            (if i.secs > 0.0 { a / i.secs } else { 0.0 }, (a, i.secs))
        })
        .unzip();
    let n = rates.len();
    if n < 2 * MIN_SIDE {
        return None;
    }
    let total: f64 = rates.iter().sum();
    let total_sq: f64 = rates.iter().map(|r| r * r).sum();
    let (mut sum, mut sq) = (0.0, 0.0);
    let mut best: Option<(usize, f64)> = None;
    for (k, r) in rates.iter().enumerate().take(n - MIN_SIDE) {
        sum += r;
        sq += r * r;
        let left = k + 1;
        if left < MIN_SIDE {
            continue;
        }
        let right = n - left;
        let (ml, mr) = (sum / left as f64, (total - sum) / right as f64);
        let ss = (sq - sum * ml) + ((total_sq - sq) - (total - sum) * mr);
        let var = (ss / (n - 2) as f64).max(0.0);
        let se = (var * (1.0 / left as f64 + 1.0 / right as f64)).sqrt();
        let diff = (ml - mr).abs();
        let t = if se > 0.0 {
            diff / se
        } else if diff > 0.0 {
            NOISELESS_T
        } else {
            0.0
        };
        if best.is_none_or(|(_, bt)| t > bt) {
            best = Some((left, t));
        }
    }
    let (split, t) = best?;
    let rate = |ws: &[(f64, f64)]| {
        let (a, s) = ws.iter().fold((0.0, 0.0), |(a, s), (x, y)| (a + x, s + y));
        if s > 0.0 {
            a / s
        } else {
            0.0
        }
    };
    let before = rate(&weights[..split]);
    let after = rate(&weights[split..]);
    let relative = (after - before).abs() / before.max(after).max(f64::MIN_POSITIVE);
    (t >= SIGNIFICANCE && relative >= material).then(|| LoadChange {
        at: starts[split],
        rate_before: before,
        rate_after: after,
        secs_after: weights[split..].iter().map(|w| w.1).sum(),
        t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn intervals(rates: &[f64]) -> (Vec<Interval>, Vec<DateTime<Utc>>) {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let iv = rates
            .iter()
            .map(|r| Interval {
                secs: 2.0,
                arrived: BTreeMap::from([(0, r * 2.0)]),
            })
            .collect();
        let starts = (0..rates.len())
            .map(|i| t0 + chrono::Duration::seconds(2 * i as i64))
            .collect();
        (iv, starts)
    }

    #[test]
    fn finds_a_step_and_its_side() {
        let mut rates = vec![100.0; 20];
        rates.extend([400.0; 8]);
        // Noise on both sides: the step still stands out.
        for (i, r) in rates.iter_mut().enumerate() {
            *r *= 1.0 + 0.1 * ((i * 7 % 5) as f64 - 2.0) / 2.0;
        }
        let (iv, starts) = intervals(&rates);
        let c = detect(0, &iv, &starts, 0.1).unwrap();
        assert_eq!(c.at, starts[20]);
        assert!((c.rate_after - 400.0).abs() < 40.0, "{c:?}");
        assert_eq!(c.secs_after, 16.0);
    }

    #[test]
    fn noise_alone_or_a_small_change_is_no_change() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            let rates: Vec<f64> = (0..30).map(|_| 1000.0 * (0.7 + 0.6 * rng.f64())).collect();
            let (iv, starts) = intervals(&rates);
            assert_eq!(detect(0, &iv, &starts, 0.1), None, "{rates:?}");
        }
        let mut rates = vec![100.0; 20];
        rates.extend([105.0; 10]);
        let (iv, starts) = intervals(&rates);
        assert_eq!(detect(0, &iv, &starts, 0.1), None);
        assert!(detect(0, &iv, &starts, 0.01).is_some());
    }
}

//! The learned capacity model: what each stage of a job version processed
//! per second at the parallelisms it has run at, and what it would at
//! others. Per-task overheads, skewed keys and a shared broker make
//! capacity grow less than linearly with parallelism; assuming linear
//! growth (DS2) under-provisions a scale-up and needs more rescales. As
//! ContTune does over DS2, the job's own history is used once it exists.
//!
//! - One observed parallelism: linear through the origin (DS2).
//! - Several: between observed parallelisms, interpolation on a log-log
//!   scale (a local power law); beyond them, a power law `rate ∝ p^b` from
//!   the nearest observed point, `b` fitted by least squares in log-log
//!   over all points and kept in [`MIN_EXPONENT`, 1].
//!
//! The level of a job's capacity drifts (record sizes, costs per record)
//! while its shape holds: when a parallelism is measured again, every other
//! point is scaled by the same factor, so the shape learned so far is kept
//! at the level measured now.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Points kept per stage (the most recently measured).
pub const MAX_POINTS: usize = 16;

/// Capacity is assumed to grow at least this fast with parallelism; a
/// flatter fit is more likely stale points than a job that cannot scale.
pub const MIN_EXPONENT: f64 = 0.1;

/// A measured (parallelism → true processing rate) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub parallelism: u32,
    /// Records/s the stage processes when busy.
    pub rate: f64,
    pub at: DateTime<Utc>,
}

/// The observations of one job version, per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacityModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages: BTreeMap<u32, Vec<Observation>>,
}

impl CapacityModel {
    /// Records a measurement; a new job version starts a new model.
    pub fn observe(&mut self, version: u32, stage: u32, p: u32, rate: f64, at: DateTime<Utc>) {
        if !(rate.is_finite() && rate > 0.0 && p > 0) {
            return;
        }
        if self.version != Some(version) {
            self.version = Some(version);
            self.stages.clear();
        }
        let points = self.stages.entry(stage).or_default();
        if let Some(i) = points.iter().position(|o| o.parallelism == p) {
            let factor = rate / points[i].rate;
            for o in points.iter_mut() {
                o.rate *= factor;
            }
            points.remove(i);
        }
        points.push(Observation {
            parallelism: p,
            rate,
            at,
        });
        if points.len() > MAX_POINTS {
            if let Some(oldest) = (0..points.len()).min_by_key(|&i| points[i].at) {
                points.remove(oldest);
            }
        }
    }

    /// The curve of a stage, if it was ever measured.
    pub fn curve(&self, stage: u32) -> Option<Curve> {
        let mut points: Vec<(u32, f64)> = self
            .stages
            .get(&stage)?
            .iter()
            .map(|o| (o.parallelism, o.rate))
            .collect();
        points.sort_by_key(|p| p.0);
        let kind = match points.len() {
            0 => return None,
            1 => CurveKind::Linear,
            _ => CurveKind::Learned,
        };
        let exponent = match kind {
            CurveKind::Linear => 1.0,
            CurveKind::Learned => fit_exponent(&points),
        };
        Some(Curve {
            kind,
            exponent,
            points,
        })
    }
}

/// Least-squares slope of ln(rate) on ln(p), clamped.
fn fit_exponent(points: &[(u32, f64)]) -> f64 {
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|p| f64::from(p.0).ln()).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx <= 0.0 {
        return 1.0;
    }
    (sxy / sxx).clamp(MIN_EXPONENT, 1.0)
}

/// How a curve predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurveKind {
    /// One observed parallelism: capacity proportional to parallelism.
    Linear,
    /// Several: interpolated between them, a power law beyond.
    Learned,
}

/// A stage's capacity as a function of parallelism.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub kind: CurveKind,
    /// `b` of `rate ∝ p^b` beyond the observed parallelisms (1 when linear).
    pub exponent: f64,
    /// The observations, by parallelism.
    pub points: Vec<(u32, f64)>,
}

impl Curve {
    /// Predicted records/s at parallelism `p` (≥ 1).
    pub fn predict(&self, p: u32) -> f64 {
        let p = f64::from(p.max(1));
        let pts = &self.points;
        let (Some(lo), Some(hi)) = (pts.first(), pts.last()) else {
            return 0.0;
        };
        let beyond = |(q, r): (u32, f64)| r * (p / f64::from(q)).powf(self.exponent);
        if p <= f64::from(lo.0) {
            return beyond(*lo);
        }
        if p >= f64::from(hi.0) {
            return beyond(*hi);
        }
        for pair in pts.windows(2) {
            let ((p0, r0), (p1, r1)) = (pair[0], pair[1]);
            if p <= f64::from(p1) {
                let (x0, x1) = (f64::from(p0).ln(), f64::from(p1).ln());
                let w = (p.ln() - x0) / (x1 - x0);
                return (r0.ln() * (1.0 - w) + r1.ln() * w).exp();
            }
        }
        beyond(*hi)
    }

    /// The smallest parallelism in 1..=`upper` whose predicted capacity
    /// times `utilization` reaches `rate`; None if even `upper` does not.
    pub fn smallest_for(&self, rate: f64, utilization: f64, upper: u32) -> Option<u32> {
        // A hair of tolerance so that exact fits do not round up a task.
        (1..=upper).find(|&p| self.predict(p) * utilization >= rate * (1.0 - 1e-9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s)
    }

    #[test]
    fn one_point_is_linear_like_ds2() {
        let mut m = CapacityModel::default();
        m.observe(1, 0, 4, 4000.0, at(0));
        let c = m.curve(0).unwrap();
        assert_eq!(c.kind, CurveKind::Linear);
        assert!((c.predict(8) - 8000.0).abs() < 1e-6);
        // DS2: ceil(4 × 5600 / (4000 × 0.7)) = 8.
        assert_eq!(c.smallest_for(5600.0, 0.7, 64), Some(8));
        assert_eq!(c.smallest_for(5601.0, 0.7, 64), Some(9));
        assert_eq!(c.smallest_for(1e9, 0.7, 64), None);
    }

    #[test]
    fn learns_a_sub_linear_curve_and_predicts_it() {
        let truth = |p: u32| 1000.0 * f64::from(p).powf(0.7);
        let mut m = CapacityModel::default();
        m.observe(1, 0, 2, truth(2), at(0));
        m.observe(1, 0, 6, truth(6), at(60));
        let c = m.curve(0).unwrap();
        assert_eq!(c.kind, CurveKind::Learned);
        assert!((c.exponent - 0.7).abs() < 1e-9, "{c:?}");
        for p in [1, 3, 4, 12, 40] {
            let err = (c.predict(p) - truth(p)).abs() / truth(p);
            assert!(err < 1e-9, "p={p}: {} vs {}", c.predict(p), truth(p));
        }
        // Linear scaling from 6 would choose 14 for this rate; the curve knows better.
        let need = truth(20) * 0.7;
        assert_eq!(c.smallest_for(need, 0.7, 64), Some(20));
    }

    #[test]
    fn a_new_measurement_rescales_the_shape_and_a_new_version_forgets() {
        let mut m = CapacityModel::default();
        m.observe(1, 0, 2, 2000.0, at(0));
        m.observe(1, 0, 8, 6000.0, at(10));
        // Records got twice as expensive: measured again at 8.
        m.observe(1, 0, 8, 3000.0, at(20));
        let c = m.curve(0).unwrap();
        assert_eq!(c.points, vec![(2, 1000.0), (8, 3000.0)]);
        m.observe(2, 0, 4, 100.0, at(30));
        assert_eq!(m.curve(0).unwrap().points, vec![(4, 100.0)]);
        m.observe(2, 0, 4, f64::NAN, at(40));
        m.observe(2, 0, 4, 0.0, at(40));
        assert_eq!(m.curve(0).unwrap().points, vec![(4, 100.0)]);
    }

    #[test]
    fn keeps_the_most_recent_points() {
        let mut m = CapacityModel::default();
        for p in 1..=(MAX_POINTS as u32 + 3) {
            m.observe(1, 0, p, f64::from(p) * 10.0, at(i64::from(p)));
        }
        let ps: Vec<u32> = m.stages[&0].iter().map(|o| o.parallelism).collect();
        assert_eq!(ps.len(), MAX_POINTS);
        assert_eq!(ps[0], 4);
    }
}

//! From the parallelism a stage needs to the one the job gets: balanced
//! over the partitions, then kept within the policy, the partition count
//! and the tenant's capacity.
//!
//! Partitions are assigned round-robin, so with `n` partitions and `p`
//! tasks the busiest task reads `ceil(n / p)` of them and the job goes only
//! as fast as `n / ceil(n / p)` tasks would: 5 tasks on 8 partitions do no
//! more than 4. The balanced parallelism is the smallest one whose busiest
//! task reads no more partitions than that of the parallelism asked for
//! allows (a divisor of `n` where one fits).

use serde::{Deserialize, Serialize};

/// Smallest `q ≥ 1` with `n / ceil(n / q) ≥ p`: as fast as `p` evenly
/// loaded tasks would be. `p` above `n` gives `n`.
pub fn balanced(p: u32, n: u32) -> u32 {
    if n == 0 {
        return p.max(1);
    }
    let p = p.clamp(1, n);
    let per_task = n / p;
    n.div_ceil(per_task)
}

/// The largest useful parallelism not above `cap`: the smallest with the
/// same busiest task as `cap` tasks.
pub fn balanced_below(cap: u32, n: u32) -> u32 {
    if n == 0 {
        return cap.max(1);
    }
    let cap = cap.clamp(1, n);
    n.div_ceil(n.div_ceil(cap))
}

/// What bounded the parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    MinParallelism,
    MaxParallelism,
    Partitions,
    TenantCapacity,
}

/// The steps from the needed parallelism to the chosen one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sizing {
    /// Largest parallelism any stage needs.
    pub needed: u32,
    /// Partitions of the source stage.
    pub partitions: u32,
    /// `needed` balanced over the partitions.
    pub balanced: u32,
    /// The most tasks allowed: policy maximum, partitions, tenant capacity.
    pub upper: u32,
    /// The policy minimum.
    pub lower: u32,
    /// The parallelism chosen.
    pub chosen: u32,
    /// Which bound changed `balanced`, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounded_by: Option<Bound>,
}

/// Limits on the parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min: u32,
    pub max: Option<u32>,
    pub tenant: Option<u32>,
}

/// Balances `needed` over `partitions` and bounds it.
pub fn size(needed: u32, partitions: u32, limits: Limits) -> Sizing {
    let bal = balanced(needed, partitions);
    let mut upper = partitions.max(1);
    let mut upper_bound = Bound::Partitions;
    for (cap, bound) in [
        (limits.max, Bound::MaxParallelism),
        (limits.tenant, Bound::TenantCapacity),
    ] {
        if let Some(c) = cap.filter(|&c| c < upper) {
            upper = c.max(1);
            upper_bound = bound;
        }
    }
    let lower = limits.min.max(1);
    let (chosen, bounded_by) = if needed > upper || bal > upper {
        (balanced_below(upper, partitions), Some(upper_bound))
    } else if bal < lower {
        (lower.min(upper), Some(Bound::MinParallelism))
    } else {
        (bal, None)
    };
    Sizing {
        needed,
        partitions,
        balanced: bal,
        upper,
        lower,
        chosen,
        bounded_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_over_partitions() {
        let got: Vec<u32> = (1..=9).map(|p| balanced(p, 8)).collect();
        assert_eq!(got, [1, 2, 4, 4, 8, 8, 8, 8, 8]);
        let got: Vec<u32> = (1..=12).map(|p| balanced(p, 12)).collect();
        assert_eq!(got, [1, 2, 3, 4, 6, 6, 12, 12, 12, 12, 12, 12]);
        // No divisor of 10 between 3 and 5: 4 tasks (3,3,2,2) are as fast as 3.33.
        assert_eq!(balanced(3, 10), 4);
        assert_eq!(balanced(4, 10), 5);
        for n in 1..=64 {
            for p in 1..=n {
                let q = balanced(p, n);
                assert!(f64::from(n) / f64::from(n.div_ceil(q)) >= f64::from(p));
                assert!(q == 1 || f64::from(n) / f64::from(n.div_ceil(q - 1)) < f64::from(p));
            }
        }
    }

    #[test]
    fn clamps_by_policy_partitions_and_tenant() {
        let none = Limits {
            min: 1,
            max: None,
            tenant: None,
        };
        let s = size(20, 8, none);
        assert_eq!((s.chosen, s.bounded_by), (8, Some(Bound::Partitions)));
        let s = size(
            7,
            8,
            Limits {
                max: Some(6),
                ..none
            },
        );
        // 6 tasks on 8 partitions are no faster than 4.
        assert_eq!((s.chosen, s.bounded_by), (4, Some(Bound::MaxParallelism)));
        let s = size(
            7,
            8,
            Limits {
                max: Some(6),
                tenant: Some(2),
                ..none
            },
        );
        assert_eq!((s.chosen, s.bounded_by), (2, Some(Bound::TenantCapacity)));
        let s = size(1, 8, Limits { min: 3, ..none });
        assert_eq!((s.chosen, s.bounded_by), (3, Some(Bound::MinParallelism)));
        let s = size(3, 8, none);
        assert_eq!((s.balanced, s.chosen, s.bounded_by), (4, 4, None));
    }
}

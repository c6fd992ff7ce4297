//! Benchmark helpers shared by every `cargo xtask bench NAME`.
//!
//! Wall-clock numbers on shared VMs drift minute to minute, so a figure is only reported as a ratio
//! against a baseline measured *in the same run, interleaved*: [`compare`] alternates rounds of the
//! subject and the baseline and takes the median of each. Every bench ends with one [`Goal`] line
//! per goal: `ratio NAME VALUE goal OP TARGET`.
use std::time::{Duration, Instant};

/// Median of a sample (0 for an empty one).
pub fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

/// Time one call of `f`, in nanoseconds per operation when `f` performs `ops` operations.
pub fn time_per_op(ops: u64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

/// Medians of an interleaved comparison, in nanoseconds per operation.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    /// Median ns/op of the thing measured.
    pub subject: f64,
    /// Median ns/op of the baseline.
    pub baseline: f64,
}

impl Comparison {
    /// subject ÷ baseline (a cost ratio: lower is better).
    pub fn cost_ratio(&self) -> f64 {
        self.subject / self.baseline
    }
    /// baseline ÷ subject (a throughput ratio: higher is better).
    pub fn speed_ratio(&self) -> f64 {
        self.baseline / self.subject
    }
}

/// Alternate `rounds` rounds of `subject` and `baseline` (each closure runs `ops` operations per
/// call and returns nothing) and return the median ns/op of each. One warm-up round of each first.
pub fn compare(
    rounds: usize,
    ops: u64,
    mut subject: impl FnMut(),
    mut baseline: impl FnMut(),
) -> Comparison {
    subject();
    baseline();
    let mut s = Vec::with_capacity(rounds);
    let mut b = Vec::with_capacity(rounds);
    for i in 0..rounds {
        // Alternate which goes first so neither always gets the warmer cache.
        if i % 2 == 0 {
            s.push(time_per_op(ops, &mut subject));
            b.push(time_per_op(ops, &mut baseline));
        } else {
            b.push(time_per_op(ops, &mut baseline));
            s.push(time_per_op(ops, &mut subject));
        }
    }
    Comparison {
        subject: median(&mut s),
        baseline: median(&mut b),
    }
}

/// How a ratio is judged against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The ratio must be at most the target.
    AtMost,
    /// The ratio must be at least the target.
    AtLeast,
}

/// One goal of a benchmark and its measured ratio.
#[derive(Debug, Clone)]
pub struct Goal {
    /// Short name, e.g. `hop`.
    pub name: String,
    /// The measured ratio.
    pub value: f64,
    /// How it is judged.
    pub op: Op,
    /// The target.
    pub target: f64,
}

impl Goal {
    /// A goal named `name` whose ratio `value` must satisfy `op target`.
    pub fn new(name: &str, value: f64, op: Op, target: f64) -> Self {
        Self {
            name: name.to_string(),
            value,
            op,
            target,
        }
    }
    /// Whether the goal is met.
    pub fn met(&self) -> bool {
        match self.op {
            Op::AtMost => self.value <= self.target,
            Op::AtLeast => self.value >= self.target,
        }
    }
    /// The verdict line: `ratio NAME VALUE goal OP TARGET`.
    pub fn line(&self) -> String {
        let op = match self.op {
            Op::AtMost => "<=",
            Op::AtLeast => ">=",
        };
        format!(
            "ratio {} {:.3} goal {} {}",
            self.name, self.value, op, self.target
        )
    }
}

/// Print the goal lines last, as every bench must. Returns whether all goals were met.
pub fn report(goals: &[Goal]) -> bool {
    for g in goals {
        println!("{}", g.line());
    }
    goals.iter().all(Goal::met)
}

/// Format a duration in ns/op with a sensible unit.
pub fn fmt_ns(ns: f64) -> String {
    let d = Duration::from_nanos(ns.max(0.0) as u64);
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn goal_lines_and_verdicts() {
        let g = Goal::new("hop", 1.18, Op::AtMost, 1.3);
        assert_eq!(g.line(), "ratio hop 1.180 goal <= 1.3");
        assert!(g.met());
        assert!(!Goal::new("bulk", 0.4, Op::AtLeast, 0.5).met());
    }
}

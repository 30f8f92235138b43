//! GPU classes: the work a claimed class is challenged with and the throughput floor it
//! must reach.
//!
//! A class fixes a chain of `stages` int8 products of size n (W = 2n³·K operations, see
//! [`super::chain`]) and a floor P_c in TOPS. The verifier allows `W / P_c` of compute
//! plus the round trip it measured in the session (capped, [`MAX_RTT_SHARE`]); a
//! commitment later than that is `TooSlow`, one later than [`GpuClass::close_ms`] (or
//! none) is a miss. Sizes are chosen so that the compute time at P_c is ~0.3–0.7 s: many
//! times an in-cluster round trip (< 1 ms) and far above kernel-launch and clock jitter,
//! while the prover's stage buffers (K·n² bytes) fit in a quarter of the reference
//! device's memory.
//!
//! Floors are set at ≈ 0.5 × the reference device's dense int8 datasheet peak (cuBLAS
//! int8 reaches 50–75 % of peak, research gpu-proof.md), so the device it names passes
//! with margin ≥ 1.95. Seed-derived dense matrices cannot use
//! 2:4 sparsity, so sparse figures never count.

use super::MAX_MATRIX_N;

/// Most stages a class may chain: bounds the prover's memory (K·n² bytes) and the
/// commitment size (32 bytes per stage).
pub const MAX_STAGES: u32 = 256;
/// Most rows one proof may open.
pub const MAX_SAMPLES: u32 = 256;
/// Default (stage, row) pairs opened per proof. Ours: a chain with a fraction f of wrong
/// rows survives with (1 − f)^32; claiming 3× the real speed needs f ≥ 2/3: ≤ 5e-16.
pub const DEFAULT_SAMPLES: u32 = 32;
/// Largest share of the compute time the measured RTT may add to the deadline. An agent
/// that delays its echoes to inflate the RTT gains at most this (research: window ≥ 50 ×
/// RTT).
pub const MAX_RTT_SHARE: u64 = 50;
/// Time after twice the compute time during which a commitment is still recorded (as
/// `TooSlow`) rather than counted as a miss: covers scheduling and recording.
pub const CLOSE_GRACE_MS: u64 = 2_000;

/// One GPU class as the verifier uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuClass {
    /// The class name (a RewardPolicy `gpuClasses[].name`).
    pub name: String,
    /// Throughput floor P_c, TOPS (10^12 int8 operations per second).
    pub min_tops: f64,
    /// Matrix dimension n, a power of two.
    pub n: u32,
    /// Chained products K.
    pub stages: u32,
    /// (stage, row) pairs opened per proof (S).
    pub samples: u32,
    /// Slack after twice the compute time before the challenge closes, ms
    /// ([`CLOSE_GRACE_MS`]; in-process tests shorten it).
    pub close_grace_ms: u64,
}

/// Why a class cannot be used; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuClassError {
    /// n is not a power of two in 2..=16384 (the butterfly partner needs a power of two).
    #[error("gpuClasses {class:?}: matrixN {n} must be a power of two in 2..=16384")]
    MatrixN {
        /// Class name.
        class: String,
        /// The value given.
        n: u32,
    },
    /// stages outside 1..=256.
    #[error("gpuClasses {class:?}: stages {stages} must be in 1..=256")]
    Stages {
        /// Class name.
        class: String,
        /// The value given.
        stages: u32,
    },
    /// samples outside 1..=256.
    #[error("gpuClasses {class:?}: sampledRows {samples} must be in 1..=256")]
    Samples {
        /// Class name.
        class: String,
        /// The value given.
        samples: u32,
    },
    /// minTops not a positive finite number.
    #[error("gpuClasses {class:?}: minTops must be a positive number")]
    MinTops {
        /// Class name.
        class: String,
    },
    /// A class name without built-in parameters and without its own.
    #[error(
        "gpuClasses {class:?}: not a built-in class, so minTops, matrixN and stages must be set"
    )]
    Unknown {
        /// Class name.
        class: String,
    },
}

/// The built-in class table: (name, P_c TOPS, n, K). See docs/r2/gpu.md for the
/// reference devices and margins.
const BUILT_IN: [(&str, f64, u32, u32); 6] = [
    // The CPU backend in an unoptimised test build: 268 ms at 0.5 GOPS.
    ("test", 0.0005, 256, 4),
    // A CPU agent (this machine's safe kernel: ~30 GOPS per thread): 430 ms at 20 GOPS.
    ("cpu", 0.02, 1024, 4),
    // NVIDIA T4 (130 TOPS dense int8): 352 ms at 50 TOPS, 2 GiB of stages.
    ("entry", 50.0, 4096, 128),
    // NVIDIA L4 (242 TOPS dense int8): 704 ms at 100 TOPS, 4 GiB of stages.
    ("mainstream", 100.0, 8192, 64),
    // A100 (624) and RTX 4090 (661 TOPS dense int8): 469 ms at 300 TOPS, 4 GiB.
    ("high-end", 300.0, 16384, 16),
    // H100 SXM / H200 (1979 TOPS dense int8): 422 ms at 1000 TOPS, 12 GiB.
    ("flagship", 1000.0, 16384, 48),
];

impl GpuClassError {
    /// The condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MatrixN { .. } => "GpuClassMatrixN",
            Self::Stages { .. } => "GpuClassStages",
            Self::Samples { .. } => "GpuClassSamples",
            Self::MinTops { .. } => "GpuClassMinTops",
            Self::Unknown { .. } => "GpuClassUnknown",
        }
    }
}

impl GpuClass {
    /// A built-in class by name.
    pub fn built_in(name: &str) -> Option<Self> {
        BUILT_IN
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|&(name, min_tops, n, stages)| Self {
                name: name.to_string(),
                min_tops,
                n,
                stages,
                samples: DEFAULT_SAMPLES,
                close_grace_ms: CLOSE_GRACE_MS,
            })
    }

    /// Every built-in class, slowest first.
    pub fn built_ins() -> Vec<Self> {
        BUILT_IN
            .iter()
            .filter_map(|(name, ..)| Self::built_in(name))
            .collect()
    }

    /// A policy's class: the built-in one of that name with the given fields overriding
    /// it, or (for a name without built-in parameters) exactly the given fields.
    pub fn resolve(
        name: &str,
        min_tops: Option<f64>,
        n: Option<u32>,
        stages: Option<u32>,
        samples: Option<u32>,
    ) -> Result<Self, GpuClassError> {
        let base = Self::built_in(name);
        let class = match (base, min_tops, n, stages) {
            (Some(base), ..) => Self {
                name: name.to_string(),
                min_tops: min_tops.unwrap_or(base.min_tops),
                n: n.unwrap_or(base.n),
                stages: stages.unwrap_or(base.stages),
                samples: samples.unwrap_or(base.samples),
                close_grace_ms: CLOSE_GRACE_MS,
            },
            (None, Some(min_tops), Some(n), Some(stages)) => Self {
                name: name.to_string(),
                min_tops,
                n,
                stages,
                samples: samples.unwrap_or(DEFAULT_SAMPLES),
                close_grace_ms: CLOSE_GRACE_MS,
            },
            (None, ..) => {
                return Err(GpuClassError::Unknown {
                    class: name.to_string(),
                });
            }
        };
        class.validate()?;
        Ok(class)
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), GpuClassError> {
        let class = self.name.clone();
        if !self.n.is_power_of_two() || self.n < 2 || self.n > MAX_MATRIX_N {
            return Err(GpuClassError::MatrixN { class, n: self.n });
        }
        if self.stages == 0 || self.stages > MAX_STAGES {
            return Err(GpuClassError::Stages {
                class,
                stages: self.stages,
            });
        }
        if self.samples == 0 || self.samples > MAX_SAMPLES {
            return Err(GpuClassError::Samples {
                class,
                samples: self.samples,
            });
        }
        if !(self.min_tops.is_finite() && self.min_tops > 0.0) {
            return Err(GpuClassError::MinTops { class });
        }
        Ok(())
    }

    /// W: the int8 operations of the chain, 2n³ per product (the butterfly mix adds n²
    /// per stage, which is not counted).
    pub fn work_ops(&self) -> f64 {
        chain_ops(self.n, self.stages)
    }

    /// Milliseconds a device at exactly P_c needs for W (rounded up, at least 1).
    pub fn compute_ms(&self) -> u64 {
        let ms = (self.work_ops() / (self.min_tops * 1e12) * 1000.0).ceil();
        // A float → int `as` saturates; the value is finite and positive after validate().
        (ms as u64).max(1)
    }

    /// The round trip the deadline allows for: the measured one, capped at
    /// 1/[`MAX_RTT_SHARE`] of the compute time.
    pub fn rtt_allowance_ms(&self, measured_rtt_ms: u64) -> u64 {
        measured_rtt_ms.min(self.compute_ms() / MAX_RTT_SHARE)
    }

    /// Milliseconds from challenge to commitment at P_c: `compute_ms + rtt allowance`.
    /// Later is `TooSlow`.
    pub fn deadline_ms(&self, measured_rtt_ms: u64) -> u64 {
        self.compute_ms()
            .saturating_add(self.rtt_allowance_ms(measured_rtt_ms))
    }

    /// Milliseconds after which the challenge is closed: no commitment by then is a miss,
    /// a commitment after it is `AfterWindow`.
    pub fn close_ms(&self) -> u64 {
        self.compute_ms()
            .saturating_mul(2)
            .saturating_add(self.close_grace_ms)
    }

    /// Bytes the prover holds for openings: K stages of n² int8.
    pub fn prover_bytes(&self) -> u64 {
        u64::from(self.n) * u64::from(self.n) * u64::from(self.stages)
    }
}

/// W for a chain of `stages` n×n products: 2n³·K.
pub fn chain_ops(n: u32, stages: u32) -> f64 {
    2.0 * f64::from(n).powi(3) * f64::from(stages)
}

/// The class a worker claims: the fastest of `classes` whose floor is at most its declared
/// TOPS; None when it declares less than every floor.
pub fn claimed_class(classes: &[GpuClass], declared_tops: f64) -> Option<&GpuClass> {
    classes
        .iter()
        .filter(|c| c.min_tops <= declared_tops)
        .max_by(|a, b| a.min_tops.total_cmp(&b.min_tops))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense int8 datasheet peaks (TOPS) of each class's reference device.
    const REFERENCE: [(&str, &str, f64); 5] = [
        ("entry", "T4", 130.0),
        ("mainstream", "L4", 242.0),
        ("high-end", "A100", 624.0),
        ("high-end", "RTX 4090", 661.0),
        ("flagship", "H100 SXM", 1979.0),
    ];

    #[test]
    fn built_in_classes_are_valid_and_rtt_small() {
        for class in GpuClass::built_ins() {
            class.validate().expect("built-in class");
            let compute = class.compute_ms();
            assert!(
                (250..=750).contains(&compute),
                "{}: {compute} ms",
                class.name
            );
            // A 1 ms in-cluster RTT is at most 1/50 of the window.
            assert!(class.rtt_allowance_ms(1_000) * MAX_RTT_SHARE <= compute);
        }
    }

    #[test]
    fn each_reference_device_reaches_its_class_at_half_its_peak() {
        let classes = GpuClass::built_ins();
        for (name, device, peak) in REFERENCE {
            let class = classes.iter().find(|c| c.name == name).expect("class");
            // Margin ≥ 1.95: cuBLAS int8 at 51 % of the dense peak still passes.
            assert!(class.min_tops * 1.95 <= peak, "{device} in {name}");
            // The device's stage buffers fit in 16 GiB (the smallest reference, T4).
            assert!(class.prover_bytes() <= 16 << 30, "{name}");
        }
        // A 64-core CPU at this machine's VNNI limit (0.53 TOPS per thread, 34 TOPS in
        // all) reaches no GPU class.
        let big_cpu = 0.53 * 64.0;
        let reached: Vec<&str> = classes
            .iter()
            .filter(|c| c.min_tops <= big_cpu)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(reached, ["test", "cpu"]);
    }

    #[test]
    fn the_claim_is_the_fastest_class_below_the_declared_figure() {
        let classes = GpuClass::built_ins();
        let claim = |tops| claimed_class(&classes, tops).map(|c| c.name.as_str());
        assert_eq!(claim(0.0001), None);
        assert_eq!(claim(0.001), Some("test"));
        assert_eq!(claim(1.0), Some("cpu"));
        assert_eq!(claim(299.0), Some("mainstream"));
        assert_eq!(claim(1979.0), Some("flagship"));
    }

    #[test]
    fn rtt_allowance_is_capped_and_deadline_precedes_close() {
        let class = GpuClass::built_in("cpu").expect("cpu");
        assert_eq!(class.compute_ms(), 430);
        assert_eq!(class.rtt_allowance_ms(3), 3);
        assert_eq!(class.rtt_allowance_ms(1_000), 8);
        assert_eq!(class.deadline_ms(1_000), 438);
        assert!(class.deadline_ms(u64::MAX) < class.close_ms());
    }

    #[test]
    fn resolve_overrides_and_rejects_each_bad_field() {
        let tiny = GpuClass::resolve("test", Some(1e-6), Some(32), Some(2), Some(8)).expect("ok");
        assert_eq!((tiny.n, tiny.stages, tiny.samples), (32, 2, 8));
        assert!(matches!(
            GpuClass::resolve("mine", None, Some(32), Some(2), None),
            Err(GpuClassError::Unknown { .. })
        ));
        for (n, stages, samples, tops, want) in [
            (33, 2, 8, 1.0, "MatrixN"),
            (1, 2, 8, 1.0, "MatrixN"),
            (32768, 2, 8, 1.0, "MatrixN"),
            (32, 0, 8, 1.0, "Stages"),
            (32, 257, 8, 1.0, "Stages"),
            (32, 2, 0, 1.0, "Samples"),
            (32, 2, 8, 0.0, "MinTops"),
            (32, 2, 8, f64::NAN, "MinTops"),
        ] {
            let err = GpuClass::resolve("mine", Some(tops), Some(n), Some(stages), Some(samples))
                .expect_err(want);
            assert!(format!("{err:?}").starts_with(want), "{err:?}");
        }
    }
}

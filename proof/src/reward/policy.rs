//! A reward policy as written (strings, like the RewardPolicy CRD) and its validated form.
//! Validation is pure and stops at the first bad field, naming it with its CRD path.

use std::collections::BTreeMap;

use thiserror::Error;

use super::decimal::{Decimal, DecimalError};
use super::pool::NodeKind;

/// Most epochs a remint may be smoothed over: a year of daily epochs.
pub const MAX_SMOOTHING_EPOCHS: u64 = 365;
/// Most decimal places a token may have (as the CRD's `token.decimals` allows).
pub const MAX_TOKEN_DECIMALS: u8 = 18;

/// A policy as written: the operator maps the RewardPolicy CRD into this, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// `epochSeconds`: epoch length in seconds.
    pub epoch_seconds: u64,
    /// `token.decimals`: decimal places of one token.
    pub token_decimals: u8,
    /// `emission.initialPerEpoch`: base units scheduled for epoch 0 (integer string).
    pub initial_per_epoch: String,
    /// `emission.halvingEveryEpochs`: the schedule halves every this many epochs.
    pub halving_every_epochs: u64,
    /// `emission.maxSupply`: optional cap on cumulative scheduled emission (integer string).
    pub max_supply: Option<String>,
    /// `pools.<kind>`: weight of each kind's pool, decimal strings summing to 1.
    pub pools: KindWeightsSpec,
    /// `subPools.hotspot`: optional beacon/witness split of the hotspot pool.
    pub hotspot_split: Option<HotspotSplitSpec>,
    /// `gpuClasses`: share weight of each verified GPU throughput class.
    pub gpu_classes: Vec<GpuClassSpec>,
    /// `burnAndMint`: optional re-minting of burned data credits.
    pub burn_and_mint: Option<BurnAndMintSpec>,
}

/// Pool weights per kind, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindWeightsSpec {
    /// `pools.hotspot`.
    pub hotspot: String,
    /// `pools.storage`.
    pub storage: String,
    /// `pools.gpu`.
    pub gpu: String,
    /// `pools.meter`.
    pub meter: String,
}

/// The hotspot pool's sub-pool weights, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotSplitSpec {
    /// `subPools.hotspot.beacon`.
    pub beacon: String,
    /// `subPools.hotspot.witness`.
    pub witness: String,
}

/// One GPU throughput class, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuClassSpec {
    /// `gpuClasses[i].name`: the class the verifier assigns (lower-case, digits, `-`).
    pub name: String,
    /// `gpuClasses[i].weight`: shares per fully available epoch in this class.
    pub weight: String,
}

/// Burn-and-mint parameters, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurnAndMintSpec {
    /// `burnAndMint.dcPerToken`: data credits one whole token buys (integer string).
    pub dc_per_token: String,
    /// `burnAndMint.smoothingEpochs`: burns are re-minted evenly over this many epochs.
    pub smoothing_epochs: u64,
    /// `burnAndMint.maxRemintPerEpoch`: cap on re-minted base units per epoch.
    pub max_remint_per_epoch: String,
}

/// A validated policy; only [`RewardPolicy::validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardPolicy {
    pub(crate) epoch_seconds: u64,
    pub(crate) token_decimals: u8,
    pub(crate) emission: EmissionSchedule,
    pub(crate) weights: KindWeights,
    pub(crate) hotspot_split: Option<HotspotSplit>,
    pub(crate) gpu_classes: BTreeMap<String, Decimal>,
    pub(crate) burn_and_mint: Option<BurnAndMint>,
}

/// The halving schedule in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmissionSchedule {
    /// Base units scheduled for epoch 0.
    pub initial_per_epoch: u128,
    /// Halving interval in epochs (≥ 1 once validated).
    pub halving_every_epochs: u64,
    /// Cap on cumulative scheduled emission; re-mint is not counted against it.
    pub max_supply: Option<u128>,
}

/// Validated pool weights per kind; they sum to exactly 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindWeights {
    /// Hotspot pool weight.
    pub hotspot: Decimal,
    /// Storage pool weight.
    pub storage: Decimal,
    /// GPU pool weight.
    pub gpu: Decimal,
    /// Meter pool weight.
    pub meter: Decimal,
}

impl KindWeights {
    /// The weight of `kind`'s pool.
    pub fn of(&self, kind: NodeKind) -> Decimal {
        match kind {
            NodeKind::Hotspot => self.hotspot,
            NodeKind::Storage => self.storage,
            NodeKind::Gpu => self.gpu,
            NodeKind::Meter => self.meter,
        }
    }
}

/// Validated beacon/witness split of the hotspot pool; the weights sum to exactly 1.
/// Helium's IoT split before PoC retirement was beacons 6 %, witnesses 24 % of emissions,
/// i.e. 0.2 / 0.8 of the PoC pool (`iot_verifier/src/reward_share.rs` @824f7724, research
/// depin-anchors §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotspotSplit {
    /// Beacon sub-pool weight.
    pub beacon: Decimal,
    /// Witness sub-pool weight.
    pub witness: Decimal,
}

/// Validated burn-and-mint parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnAndMint {
    /// Data credits per whole token (≥ 1): the fixed conversion rate.
    pub dc_per_token: u128,
    /// Window of past epochs whose burns are averaged (1..=365).
    pub smoothing_epochs: u64,
    /// Most base units re-minted in one epoch (≥ 1); the rest stays burned.
    pub max_remint_per_epoch: u128,
}

/// A policy field that failed validation, with its CRD path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct PolicyError {
    /// The field's path in the RewardPolicy spec, e.g. `pools.hotspot`.
    pub field: String,
    /// What is wrong with it.
    pub problem: PolicyProblem,
}

impl PolicyError {
    fn new(field: impl Into<String>, problem: impl Into<PolicyProblem>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The condition reason and metric label, from the problem.
    pub fn reason(&self) -> &'static str {
        self.problem.reason()
    }
}

/// What is wrong with a policy field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyProblem {
    /// A weight or multiplier is not an exact decimal.
    #[error(transparent)]
    Decimal(#[from] DecimalError),
    /// An amount is not a whole number of base units that fits in a u128.
    #[error("{0:?} is not a whole number of base units")]
    NotAmount(String),
    /// A weight is above 1.
    #[error("{0:?} is above 1")]
    AboveOne(String),
    /// A number is below its minimum.
    #[error("{value} is below {min}")]
    Below {
        /// The smallest allowed value.
        min: u128,
        /// The value given.
        value: u128,
    },
    /// A number is above its maximum.
    #[error("{value} is above {max}")]
    Above {
        /// The largest allowed value.
        max: u128,
        /// The value given.
        value: u128,
    },
    /// Weights that must sum to exactly 1 do not.
    #[error("weights sum to {0}, not 1")]
    WeightSum(Decimal),
    /// A class name is empty, too long, or uses characters other than `a-z0-9-`.
    #[error("{0:?} is not a class name (1 to 63 of a-z, 0-9, -)")]
    BadName(String),
    /// A class name appears twice.
    #[error("{0:?} is listed twice")]
    Duplicate(String),
    /// The GPU pool has weight but no class could ever earn from it.
    #[error("pools.gpu is {0} but no GPU classes are listed")]
    NoGpuClasses(Decimal),
}

impl PolicyProblem {
    /// A stable CamelCase label for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PolicyProblem::Decimal(DecimalError::NotDecimal(_)) => "NotDecimal",
            PolicyProblem::Decimal(DecimalError::TooPrecise(_)) => "TooPrecise",
            PolicyProblem::Decimal(DecimalError::TooLarge(_)) => "TooLarge",
            PolicyProblem::NotAmount(_) => "NotAmount",
            PolicyProblem::AboveOne(_) => "AboveOne",
            PolicyProblem::Below { .. } => "BelowMinimum",
            PolicyProblem::Above { .. } => "AboveMaximum",
            PolicyProblem::WeightSum(_) => "WeightSum",
            PolicyProblem::BadName(_) => "BadName",
            PolicyProblem::Duplicate(_) => "Duplicate",
            PolicyProblem::NoGpuClasses(_) => "NoGpuClasses",
        }
    }
}

fn at_least(field: &str, min: u128, value: u128) -> Result<(), PolicyError> {
    if value < min {
        return Err(PolicyError::new(field, PolicyProblem::Below { min, value }));
    }
    Ok(())
}

fn at_most(field: &str, max: u128, value: u128) -> Result<(), PolicyError> {
    if value > max {
        return Err(PolicyError::new(field, PolicyProblem::Above { max, value }));
    }
    Ok(())
}

/// A whole number of base units: ASCII digits only, fitting in a u128.
fn amount(field: &str, text: &str) -> Result<u128, PolicyError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| text.parse::<u128>().ok())
        .flatten()
        .ok_or_else(|| PolicyError::new(field, PolicyProblem::NotAmount(text.to_owned())))
}

fn decimal(field: &str, text: &str) -> Result<Decimal, PolicyError> {
    Decimal::parse(text).map_err(|e| PolicyError::new(field, e))
}

/// A decimal in [0, 1].
fn weight(field: &str, text: &str) -> Result<Decimal, PolicyError> {
    let value = decimal(field, text)?;
    if value > Decimal::ONE {
        return Err(PolicyError::new(
            field,
            PolicyProblem::AboveOne(text.to_owned()),
        ));
    }
    Ok(value)
}

/// Checks that `weights` sum to exactly 1 (each is ≤ 1, so the sum cannot overflow).
fn sums_to_one(field: &str, weights: &[Decimal]) -> Result<(), PolicyError> {
    let sum = weights
        .iter()
        .fold(Decimal::ZERO, |sum, w| sum.checked_add(*w).unwrap_or(sum));
    if sum != Decimal::ONE {
        return Err(PolicyError::new(field, PolicyProblem::WeightSum(sum)));
    }
    Ok(())
}

fn class_name(field: &str, name: &str) -> Result<(), PolicyError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(PolicyError::new(
            field,
            PolicyProblem::BadName(name.to_owned()),
        ));
    }
    Ok(())
}

impl RewardPolicy {
    /// Validates every field of `spec`, in spec order; the first bad one is the error.
    pub fn validate(spec: &PolicySpec) -> Result<Self, PolicyError> {
        at_least("epochSeconds", 1, spec.epoch_seconds.into())?;
        let decimals = spec.token_decimals;
        at_most("token.decimals", MAX_TOKEN_DECIMALS.into(), decimals.into())?;
        let emission = validate_emission(spec)?;
        let weights = validate_weights(&spec.pools)?;
        let hotspot_split = spec
            .hotspot_split
            .as_ref()
            .map(validate_hotspot_split)
            .transpose()?;
        let gpu_classes = validate_gpu_classes(&spec.gpu_classes, weights.gpu)?;
        let burn_and_mint = spec
            .burn_and_mint
            .as_ref()
            .map(validate_burn_and_mint)
            .transpose()?;
        Ok(Self {
            epoch_seconds: spec.epoch_seconds,
            token_decimals: decimals,
            emission,
            weights,
            hotspot_split,
            gpu_classes,
            burn_and_mint,
        })
    }

    /// Epoch length in seconds.
    pub fn epoch_seconds(&self) -> u64 {
        self.epoch_seconds
    }

    /// Decimal places of one token.
    pub fn token_decimals(&self) -> u8 {
        self.token_decimals
    }

    /// The emission schedule.
    pub fn emission(&self) -> &EmissionSchedule {
        &self.emission
    }

    /// Pool weights per kind.
    pub fn weights(&self) -> &KindWeights {
        &self.weights
    }

    /// The hotspot beacon/witness split, if any.
    pub fn hotspot_split(&self) -> Option<&HotspotSplit> {
        self.hotspot_split.as_ref()
    }

    /// Share weight per GPU throughput class.
    pub fn gpu_classes(&self) -> &BTreeMap<String, Decimal> {
        &self.gpu_classes
    }

    /// Burn-and-mint parameters, if re-minting is on.
    pub fn burn_and_mint(&self) -> Option<&BurnAndMint> {
        self.burn_and_mint.as_ref()
    }
}

fn validate_emission(spec: &PolicySpec) -> Result<EmissionSchedule, PolicyError> {
    let initial_per_epoch = amount("emission.initialPerEpoch", &spec.initial_per_epoch)?;
    let halving = spec.halving_every_epochs;
    at_least("emission.halvingEveryEpochs", 1, halving.into())?;
    let max_supply = match &spec.max_supply {
        Some(text) => {
            let cap = amount("emission.maxSupply", text)?;
            at_least("emission.maxSupply", 1, cap)?;
            Some(cap)
        }
        None => None,
    };
    Ok(EmissionSchedule {
        initial_per_epoch,
        halving_every_epochs: halving,
        max_supply,
    })
}

fn validate_weights(pools: &KindWeightsSpec) -> Result<KindWeights, PolicyError> {
    let weights = KindWeights {
        hotspot: weight("pools.hotspot", &pools.hotspot)?,
        storage: weight("pools.storage", &pools.storage)?,
        gpu: weight("pools.gpu", &pools.gpu)?,
        meter: weight("pools.meter", &pools.meter)?,
    };
    sums_to_one("pools", &NodeKind::ALL.map(|kind| weights.of(kind)))?;
    Ok(weights)
}

fn validate_hotspot_split(split: &HotspotSplitSpec) -> Result<HotspotSplit, PolicyError> {
    let beacon = weight("subPools.hotspot.beacon", &split.beacon)?;
    let witness = weight("subPools.hotspot.witness", &split.witness)?;
    sums_to_one("subPools.hotspot", &[beacon, witness])?;
    Ok(HotspotSplit { beacon, witness })
}

fn validate_gpu_classes(
    classes: &[GpuClassSpec],
    gpu_weight: Decimal,
) -> Result<BTreeMap<String, Decimal>, PolicyError> {
    let mut out = BTreeMap::new();
    for (i, class) in classes.iter().enumerate() {
        let name_field = format!("gpuClasses[{i}].name");
        class_name(&name_field, &class.name)?;
        let weight = decimal(&format!("gpuClasses[{i}].weight"), &class.weight)?;
        if out.insert(class.name.clone(), weight).is_some() {
            return Err(PolicyError::new(
                name_field,
                PolicyProblem::Duplicate(class.name.clone()),
            ));
        }
    }
    if out.is_empty() && !gpu_weight.is_zero() {
        return Err(PolicyError::new(
            "gpuClasses",
            PolicyProblem::NoGpuClasses(gpu_weight),
        ));
    }
    Ok(out)
}

fn validate_burn_and_mint(spec: &BurnAndMintSpec) -> Result<BurnAndMint, PolicyError> {
    let dc_per_token = amount("burnAndMint.dcPerToken", &spec.dc_per_token)?;
    at_least("burnAndMint.dcPerToken", 1, dc_per_token)?;
    let window = spec.smoothing_epochs.into();
    at_least("burnAndMint.smoothingEpochs", 1, window)?;
    at_most(
        "burnAndMint.smoothingEpochs",
        MAX_SMOOTHING_EPOCHS.into(),
        window,
    )?;
    let cap = amount("burnAndMint.maxRemintPerEpoch", &spec.max_remint_per_epoch)?;
    at_least("burnAndMint.maxRemintPerEpoch", 1, cap)?;
    Ok(BurnAndMint {
        dc_per_token,
        smoothing_epochs: spec.smoothing_epochs,
        max_remint_per_epoch: cap,
    })
}

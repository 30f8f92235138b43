//! Pure verifier rules: domain input, the clock as `now_ms`, narrow lookups (the node's
//! ledger, what it declared, its policy's epoch and PoC rules) in; domain outcomes out.
//! No protobuf, no channels, no metrics, no clock reads: the session layer carries the
//! outcomes out, so every rule here is a table-driven test without a runtime.
//!
//! Counting rule for challenges (storage, GPU): a challenge gets exactly one recorded
//! result; see `state::ledger`.

pub mod gpu;
pub mod meter;
pub mod poc;
pub mod storage;
pub mod tally;

use super::state::index::EpochWindow;
use super::state::ledger::{Issued, NodeLedger, State};
use depin_proof::RejectReason;
use depin_proof::entropy::{Beacon, ChallengeId};
use depin_proof::gpu::{SampleRequest, VerifiedChainCommitment};
use depin_proof::receipt::{ProofKind, Receipt};
use depin_proof::storage::StorageParams;

/// What the session does with one challenge response.
#[derive(Debug)]
pub enum Outcome {
    /// Answer with an unrecorded rejection (unknown challenge, a second GPU root, an
    /// opening nothing asked for).
    Refuse {
        /// The challenge named.
        challenge: ChallengeId,
        /// Its proof kind.
        kind: ProofKind,
        /// Why.
        reason: RejectReason,
    },
    /// Already answered: a Replay rejection carrying the original receipt.
    Replay {
        /// The challenge.
        challenge: ChallengeId,
        /// Its proof kind.
        kind: ProofKind,
        /// The receipt it was answered with.
        original: Box<Receipt>,
    },
    /// Being recorded: a Replay rejection carrying the original receipt once it exists.
    AwaitOriginal {
        /// The challenge.
        challenge: ChallengeId,
        /// Its proof kind.
        kind: ProofKind,
    },
    /// GPU commitment accepted: remember it (state Committed) and request these samples.
    Commit {
        /// The challenge.
        challenge: ChallengeId,
        /// The verified commitment and the samples to request.
        committed: Box<(VerifiedChainCommitment, SampleRequest)>,
    },
    /// GPU commitment re-sent (reconnect): request the same samples again.
    AskAgain(SampleRequest),
    /// Make this result durable (state Recording), then send its receipt.
    Record {
        /// The challenge.
        challenge: ChallengeId,
        /// Its proof kind.
        kind: ProofKind,
        /// Work units when accepted, else the reason.
        result: Result<u128, RejectReason>,
        /// What earned the units (GPU: the measured throughput class).
        part: Option<String>,
    },
}

/// What the storage and GPU rules check against, besides the node's own ledger.
#[derive(Clone, Copy)]
pub struct ChallengeRules<'a> {
    /// Storage proof parameters.
    pub storage: &'a StorageParams,
    /// The beacon challenges were drawn from.
    pub beacon: &'a Beacon,
    /// The node's policy epoch timing (`None`: unknown policy, never late).
    pub epoch: Option<EpochWindow>,
}

/// `result`, or `LateForEpoch` when it accepts work started at `work_ms` whose reward
/// epoch is already past its grace period at `now_ms`. Rejections keep their own reason.
pub fn in_time(
    epoch: Option<EpochWindow>,
    work_ms: u64,
    now_ms: u64,
    result: Result<u128, RejectReason>,
) -> Result<u128, RejectReason> {
    let late = result.is_ok()
        && epoch.is_some_and(|e| {
            tally::late_for_epoch(work_ms, now_ms, e.epoch_seconds, e.grace_seconds)
        });
    if late {
        Err(RejectReason::LateForEpoch)
    } else {
        result
    }
}

/// The outcome for a response whose challenge is missing or settled; `None` when it is
/// live (Open or Committed).
pub fn settled(ledger: &NodeLedger, challenge: ChallengeId, kind: ProofKind) -> Option<Outcome> {
    match ledger
        .challenges
        .get(&challenge)
        .map(|issued| &issued.state)
    {
        None => Some(Outcome::Refuse {
            challenge,
            kind,
            reason: RejectReason::UnknownChallenge,
        }),
        Some(State::Answered(original)) => Some(Outcome::Replay {
            challenge,
            kind,
            original: original.clone(),
        }),
        Some(State::Recording { .. }) => Some(Outcome::AwaitOriginal { challenge, kind }),
        Some(State::Open | State::Committed(_)) => None,
    }
}

/// Records `result` (checked for lateness against the work's start) of `issued`.
fn record(
    issued: &Issued,
    challenge: ChallengeId,
    result: Result<u128, RejectReason>,
    part: Option<String>,
    rules: &ChallengeRules<'_>,
    now_ms: u64,
) -> Outcome {
    Outcome::Record {
        challenge,
        kind: issued.challenge.kind(),
        result: in_time(
            rules.epoch,
            issued.challenge.work_started_ms(),
            now_ms,
            result,
        ),
        part,
    }
}

/// What a rule test compares: an outcome without its large payloads.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `Outcome::Refuse` with its reason.
    Refused(RejectReason),
    /// `Outcome::Replay`.
    Replayed,
    /// `Outcome::AwaitOriginal`.
    Awaiting,
    /// `Outcome::Commit`.
    Committed,
    /// `Outcome::AskAgain`.
    AskedAgain,
    /// `Outcome::Record` with its result.
    Recorded(Result<u128, RejectReason>),
}

#[cfg(test)]
impl Outcome {
    /// This outcome's shape.
    pub(crate) fn shape(&self) -> Shape {
        match self {
            Outcome::Refuse { reason, .. } => Shape::Refused(*reason),
            Outcome::Replay { .. } => Shape::Replayed,
            Outcome::AwaitOriginal { .. } => Shape::Awaiting,
            Outcome::Commit { .. } => Shape::Committed,
            Outcome::AskAgain(_) => Shape::AskedAgain,
            Outcome::Record { result, .. } => Shape::Recorded(*result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepted_work_of_a_frozen_epoch_becomes_late() {
        // 60 s epochs, 5 s grace: work at 61 s is frozen at 125 s.
        let epoch = Some(EpochWindow {
            epoch_seconds: 60,
            grace_seconds: 5,
        });
        type Row = (
            Option<EpochWindow>,
            u64,
            Result<u128, RejectReason>,
            Result<u128, RejectReason>,
        );
        let table: &[Row] = &[
            (epoch, 124_999, Ok(7), Ok(7)),
            (epoch, 125_000, Ok(7), Err(RejectReason::LateForEpoch)),
            (
                epoch,
                125_000,
                Err(RejectReason::BadSignature),
                Err(RejectReason::BadSignature),
            ),
            (None, u64::MAX, Ok(7), Ok(7)),
        ];
        for (i, (epoch, now, result, want)) in table.iter().enumerate() {
            assert_eq!(in_time(*epoch, 61_000, *now, *result), *want, "row {i}");
        }
    }
}

//! `kubectl depin rewards`: a closed epoch's RewardEpoch and manifest, checked against
//! each other, as a summary and optionally per node.

use std::fmt::Write;

use depin_crds::RewardEpochSpec;
use kube::Client;

use crate::epochs::{epoch_name, reward_epoch};
use crate::manifest::{Manifest, ManifestProblem, check_manifest, parse_manifest};
use crate::operator::{OperatorAccess, OperatorError, check_name};

/// The canonical manifest text of `policy`'s closed `epoch`, from the operator's
/// `GET /rewards/{policy}/epochs/{epoch}/manifest`; unchecked (see [`epoch_report`]).
pub async fn fetch_manifest(
    client: &Client,
    access: &OperatorAccess,
    policy: &str,
    epoch: u64,
) -> Result<String, OperatorError> {
    check_name("policy", policy)?;
    let path = format!("/rewards/{policy}/epochs/{epoch}/manifest");
    let what = format!("manifest of policy {policy} epoch {epoch}");
    access.get_text(client, &path, &what).await
}

/// A closed epoch as the cluster records it and as the operator publishes it.
#[derive(Clone, Debug)]
pub struct EpochReport {
    /// The RewardEpoch's spec (the commit point).
    pub record: RewardEpochSpec,
    /// The manifest served for it.
    pub manifest: Manifest,
    /// Disagreements between the two, or inside the manifest; empty when all checks pass.
    pub problems: Vec<ManifestProblem>,
}

impl EpochReport {
    /// Checks `manifest` against `record`.
    pub fn new(record: RewardEpochSpec, manifest: Manifest) -> Self {
        let problems = check_manifest(&manifest, &record);
        Self {
            record,
            manifest,
            problems,
        }
    }

    /// Whether every check passed.
    pub fn verified(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads `policy`'s RewardEpoch (`epoch`, or the latest), fetches its manifest and checks
/// one against the other (root line, recomputed root, totals).
pub async fn epoch_report(
    client: &Client,
    access: &OperatorAccess,
    policy: &str,
    epoch: Option<u64>,
) -> anyhow::Result<EpochReport> {
    let record = reward_epoch(client, policy, epoch).await?;
    let text = fetch_manifest(client, access, policy, record.epoch).await?;
    let manifest = parse_manifest(&text)
        .map_err(|e| anyhow::anyhow!("manifest of policy {policy} epoch {}: {e}", record.epoch))?;
    Ok(EpochReport::new(record, manifest))
}

/// The summary (totals, pools, checks) and, with `nodes`, one line per leaf.
pub fn render_report(report: &EpochReport, nodes: bool) -> String {
    let (r, m) = (&report.record, &report.manifest);
    let mut out = String::new();
    // Writing to a String cannot fail; `let _` drops the always-Ok results.
    let _ = writeln!(
        out,
        "RewardEpoch  {} (policy {}, epoch {})",
        epoch_name(&r.policy, r.epoch),
        r.policy,
        r.epoch
    );
    let _ = writeln!(
        out,
        "window       {} .. {}",
        unix(r.window_start),
        unix(r.window_end)
    );
    for (label, value) in [
        ("emission", m.emission.to_string()),
        ("burn", m.burn.to_string()),
        ("remint", m.remint.to_string()),
        ("unallocated", m.unallocated.to_string()),
        ("nodes paid", m.node_count.to_string()),
        ("leaves", m.nodes.len().to_string()),
        ("merkle root", hex::encode(m.merkle_root)),
    ] {
        let _ = writeln!(out, "{label:<12} {value}");
    }
    let _ = writeln!(
        out,
        "\n{:<16} {:>20} {:>20} {:>20}  REWARD/SHARE",
        "POOL", "AMOUNT", "PAID", "TOTAL SHARES"
    );
    for p in &m.pools {
        let _ = writeln!(
            out,
            "{:<16} {:>20} {:>20} {:>20}  {}",
            p.pool, p.amount, p.paid, p.total_shares, p.reward_per_share
        );
    }
    out.push('\n');
    out.push_str(&render_checks(report));
    if nodes {
        let _ = writeln!(
            out,
            "\n{:<40} {:>24} {:>24}",
            "NODE", "REWARD", "CUMULATIVE"
        );
        for n in &m.nodes {
            let _ = writeln!(out, "{:<40} {:>24} {:>24}", n.node, n.reward, n.cumulative);
        }
    }
    out
}

/// One line per check, then every problem found.
fn render_checks(report: &EpochReport) -> String {
    let failed = |reason: &str| report.problems.iter().any(|p| p.reason() == reason);
    let roots = ["RootLineDiffers", "RecomputedRootDiffers"];
    let others = report.problems.iter().all(|p| roots.contains(&p.reason()));
    let checks = [
        (
            "manifest merkle-root = RewardEpoch merkleRoot".to_owned(),
            !failed(roots[0]),
        ),
        (
            format!(
                "root recomputed from {} node lines",
                report.manifest.nodes.len()
            ),
            !failed(roots[1]),
        ),
        ("totals, pools and leaf order".to_owned(), others),
    ];
    let mut out = String::new();
    for (check, ok) in checks {
        let _ = writeln!(
            out,
            "{:<48} {}",
            format!("{check}:"),
            if ok { "ok" } else { "MISMATCH" }
        );
    }
    for problem in &report.problems {
        let _ = writeln!(out, "  {}: {problem}", problem.reason());
    }
    out
}

/// Unix seconds as an RFC 3339 time (the raw number if out of range).
fn unix(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| seconds.to_string(), |t| t.to_string())
}

//! What a StorageNode's data volume really holds. A StatefulSet's claim template is
//! immutable, so growing `spec.capacity` recreates the StatefulSet but keeps the old claim
//! at its old size: the claim is expanded here when its StorageClass allows it
//! (`allowVolumeExpansion`), and otherwise the agent is told to fill (and the verifier to
//! accept) only what the volume holds, with a `CapacityLimited` condition saying so.

use crate::error::Result;
use depin_crds::CapacityStatus;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// Condition type: the volume holds less than `spec.capacity`.
pub const CAPACITY_LIMITED: &str = "CapacityLimited";

/// The claim and class as read from the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeFacts {
    /// Whether the claim exists yet (the StatefulSet creates it with its first pod).
    pub exists: bool,
    /// `spec.resources.requests.storage`, bytes.
    pub requested_bytes: Option<u64>,
    /// `status.capacity.storage` once bound, bytes.
    pub holds_bytes: Option<u64>,
    /// The class's `allowVolumeExpansion` (None: class unknown).
    pub expandable: Option<bool>,
}

/// What to do about the volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumePlan {
    /// No claim yet: the StatefulSet creates it at the spec's size.
    NotCreated,
    /// It holds (or asks for) at least the spec's capacity.
    Fits,
    /// Smaller than the spec and its class can expand: ask for the spec's size.
    Expand,
    /// Smaller than the spec and its class cannot expand.
    Limited,
}

/// The plan for a volume of `facts` under a spec asking `spec_bytes`.
pub fn plan(spec_bytes: u64, facts: &VolumeFacts) -> VolumePlan {
    if !facts.exists {
        return VolumePlan::NotCreated;
    }
    let holds = facts.holds_bytes.or(facts.requested_bytes).unwrap_or(0);
    if holds >= spec_bytes {
        VolumePlan::Fits
    } else if facts.expandable == Some(true) {
        if facts.requested_bytes.is_some_and(|r| r >= spec_bytes) {
            // Already asked; the resize is in progress.
            VolumePlan::Fits
        } else {
            VolumePlan::Expand
        }
    } else {
        VolumePlan::Limited
    }
}

/// Bytes the node can really prove: the spec's capacity, capped by what the claim holds
/// (or, before it is bound, asks for). A claim not created yet will be the spec's size.
pub fn proving_bytes(spec_bytes: u64, facts: &VolumeFacts) -> u64 {
    if !facts.exists {
        return spec_bytes;
    }
    let holds = facts.holds_bytes.or(facts.requested_bytes).unwrap_or(0);
    spec_bytes.min(holds)
}

/// `status.capacity` for the node.
pub fn capacity_status(spec_bytes: u64, facts: &VolumeFacts) -> CapacityStatus {
    CapacityStatus {
        requested_bytes: spec_bytes,
        volume_bytes: facts.holds_bytes,
        proving_bytes: proving_bytes(spec_bytes, facts),
    }
}

/// The `CapacityLimited` condition: (is true, reason, message).
pub fn condition(spec_bytes: u64, facts: &VolumeFacts) -> (bool, String, String) {
    let proving = proving_bytes(spec_bytes, facts);
    let holds = facts.holds_bytes.or(facts.requested_bytes).unwrap_or(0);
    if proving >= spec_bytes {
        return (
            false,
            "VolumeFits".into(),
            format!("the volume holds spec.capacity {}", human(spec_bytes)),
        );
    }
    let (reason, why) = match plan(spec_bytes, facts) {
        VolumePlan::Expand | VolumePlan::Fits => ("VolumeExpanding", "expansion requested"),
        _ => ("ExpansionNotAllowed", "its StorageClass cannot expand"),
    };
    (
        true,
        reason.into(),
        format!(
            "PVC holds {}, spec asks {} ({why}); proving {}",
            human(holds),
            human(spec_bytes),
            human(proving)
        ),
    )
}

/// Bytes as a Kubernetes quantity, binary suffix when exact (512Mi, 1Gi).
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u32); 5] = [("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    for (suffix, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// The claim the StatefulSet makes for pod 0: `<template>-<statefulset>-0`.
pub fn claim_name(node: &str) -> String {
    format!("data-{node}-0")
}

/// Reads the node's claim and its class.
pub async fn observe(client: &Client, namespace: &str, node: &str) -> Result<VolumeFacts> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let Some(claim) = claims.get_opt(&claim_name(node)).await? else {
        return Ok(VolumeFacts::default());
    };
    let quantity = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.and_then(|q| super::quantity::bytes(&q.0, "storage").ok())
    };
    let spec = claim.spec.as_ref();
    let requested = quantity(
        spec.and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage")),
    );
    let holds = quantity(
        claim
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage")),
    );
    let expandable = match spec.and_then(|s| s.storage_class_name.as_deref()) {
        Some(class) => {
            let classes: Api<StorageClass> = Api::all(client.clone());
            classes
                .get_opt(class)
                .await?
                .map(|c| c.allow_volume_expansion.unwrap_or(false))
        }
        None => None,
    };
    Ok(VolumeFacts {
        exists: true,
        requested_bytes: requested,
        holds_bytes: holds,
        expandable,
    })
}

/// Asks the claim for `bytes` (the API server and the CSI driver do the resize).
pub async fn expand(client: &Client, namespace: &str, node: &str, bytes: u64) -> Result<()> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    // A merge patch of one field: the claim belongs to the StatefulSet controller, and
    // server-side apply would make this manager co-own fields it does not set.
    let patch =
        serde_json::json!({"spec": {"resources": {"requests": {"storage": bytes.to_string()}}}});
    claims
        .patch(
            &claim_name(node),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    tracing::info!(claim = %claim_name(node), size = %human(bytes), "expanding the data volume");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn facts(requested: u64, holds: Option<u64>, expandable: Option<bool>) -> VolumeFacts {
        VolumeFacts {
            exists: true,
            requested_bytes: Some(requested),
            holds_bytes: holds,
            expandable,
        }
    }

    #[test]
    fn a_grown_spec_expands_or_proves_only_what_the_volume_holds() {
        let spec = 1024 * MI;
        // (facts, plan, proving bytes, condition (status, reason))
        type Row = (VolumeFacts, VolumePlan, u64, (bool, &'static str));
        let table: Vec<Row> = vec![
            // First reconcile: the StatefulSet will create the claim at spec size.
            (
                VolumeFacts::default(),
                VolumePlan::NotCreated,
                spec,
                (false, "VolumeFits"),
            ),
            // Bound at the spec's size.
            (
                facts(spec, Some(spec), Some(false)),
                VolumePlan::Fits,
                spec,
                (false, "VolumeFits"),
            ),
            // The case: grown to 1Gi, the class cannot expand, the claim holds 512Mi.
            (
                facts(512 * MI, Some(512 * MI), Some(false)),
                VolumePlan::Limited,
                512 * MI,
                (true, "ExpansionNotAllowed"),
            ),
            // Unknown class: treated as not expandable.
            (
                facts(512 * MI, Some(512 * MI), None),
                VolumePlan::Limited,
                512 * MI,
                (true, "ExpansionNotAllowed"),
            ),
            // Expandable class: ask for 1Gi; prove 512Mi until the resize lands.
            (
                facts(512 * MI, Some(512 * MI), Some(true)),
                VolumePlan::Expand,
                512 * MI,
                (true, "VolumeExpanding"),
            ),
            (
                facts(spec, Some(512 * MI), Some(true)),
                VolumePlan::Fits,
                512 * MI,
                (true, "VolumeExpanding"),
            ),
            // Not bound yet: its request is the bound.
            (
                facts(512 * MI, None, Some(false)),
                VolumePlan::Limited,
                512 * MI,
                (true, "ExpansionNotAllowed"),
            ),
            // A volume larger than asked proves only the spec's capacity.
            (
                facts(spec, Some(2 * spec), Some(false)),
                VolumePlan::Fits,
                spec,
                (false, "VolumeFits"),
            ),
        ];
        for (i, (f, want_plan, want_bytes, (status, reason))) in table.into_iter().enumerate() {
            assert_eq!(plan(spec, &f), want_plan, "row {i}");
            assert_eq!(proving_bytes(spec, &f), want_bytes, "row {i}");
            let (s, r, _) = condition(spec, &f);
            assert_eq!((s, r.as_str()), (status, reason), "row {i}");
        }
        let (_, _, message) = condition(spec, &facts(512 * MI, Some(512 * MI), Some(false)));
        assert_eq!(
            message,
            "PVC holds 512Mi, spec asks 1Gi (its StorageClass cannot expand); proving 512Mi"
        );
    }

    #[test]
    fn quantities_read_back_in_binary_units() {
        assert_eq!(human(512 * MI), "512Mi");
        assert_eq!(human(1 << 30), "1Gi");
        assert_eq!(human(1536 * MI), "1536Mi");
        assert_eq!(human(1000), "1000");
        assert_eq!(claim_name("sn-1"), "data-sn-1-0");
    }
}

//! Node CRs of the four kinds: read for tallies, written for `status.rewards`.

use std::fmt::Debug;

use depin_crds::{
    Direction, GpuWorker, HotspotGateway, MeterBridge, NodeStatus, RewardSummary, StorageNode,
};
use depin_proof::reward::NodeKind;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::book::REWARDS_FIELD_MANAGER;
use super::tallies::NodeRecord;

/// Nodes listed per API call: large fleets are read in pages, not one huge response.
const PAGE: u32 = 500;

/// Every node CR, of every kind and namespace, whose `spec.rewardPolicy` is `policy`.
pub async fn list_nodes(client: &Client, policy: &str) -> Result<Vec<NodeRecord>, kube::Error> {
    let mut out = Vec::new();
    list_kind::<StorageNode>(client, NodeKind::Storage, &mut out, |n| {
        (n.spec.reward_policy == policy).then(|| (n.status.clone(), false))
    })
    .await?;
    list_kind::<GpuWorker>(client, NodeKind::Gpu, &mut out, |n| {
        (n.spec.reward_policy == policy).then(|| (n.status.clone(), false))
    })
    .await?;
    list_kind::<HotspotGateway>(client, NodeKind::Hotspot, &mut out, |n| {
        (n.spec.reward_policy == policy).then(|| (n.status.clone(), false))
    })
    .await?;
    list_kind::<MeterBridge>(client, NodeKind::Meter, &mut out, |n| {
        let consumption = n.spec.direction == Direction::Consumption;
        (n.spec.reward_policy == policy).then(|| (n.status.clone(), consumption))
    })
    .await?;
    Ok(out)
}

/// What `list_kind` keeps of a node: status, and whether it is a consumption meter.
type Selected = (Option<NodeStatus>, bool);

/// Appends the nodes of kind `K` that `select` keeps (returning their status).
async fn list_kind<K>(
    client: &Client,
    kind: NodeKind,
    out: &mut Vec<NodeRecord>,
    select: impl Fn(&K) -> Option<Selected>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        for node in &page.items {
            if let Some((status, consumption)) = select(node) {
                out.push(NodeRecord {
                    namespace: node.namespace().unwrap_or_default(),
                    name: node.name_any(),
                    kind: Some(kind),
                    consumption,
                    status: status.unwrap_or_default(),
                });
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// Applies `status.rewards` of one node under the reward controller's own field manager
/// (the verifier owns `status.proofs`, the node controller its conditions). A node deleted
/// meanwhile is skipped: its total stays in the manifest.
pub async fn write_rewards(
    client: &Client,
    record: &NodeRecord,
    summary: RewardSummary,
) -> Result<(), kube::Error> {
    let resource = match record.kind {
        Some(NodeKind::Storage) => ApiResource::erase::<StorageNode>(&()),
        Some(NodeKind::Gpu) => ApiResource::erase::<GpuWorker>(&()),
        Some(NodeKind::Hotspot) => ApiResource::erase::<HotspotGateway>(&()),
        Some(NodeKind::Meter) => ApiResource::erase::<MeterBridge>(&()),
        None => return Ok(()),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &record.namespace, &resource);
    let body = serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "status": {"rewards": summary},
    });
    let params = PatchParams::apply(REWARDS_FIELD_MANAGER).force();
    match api
        .patch_status(&record.name, &params, &Patch::Apply(body))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

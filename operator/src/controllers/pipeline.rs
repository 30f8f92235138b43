//! The reconcile every node kind runs, and the controller around it.

use super::desired::{self, Desired};
use super::identity::{self, Identity};
use super::pod::{AgentDefaults, MANAGED_BY};
use super::status::{self, Outcome, OwnedStatus, Rollout};
use super::{Fitted, NodeKind, Workload};
use crate::FIELD_MANAGER;
use crate::context::Context;
use crate::error::{Error, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{DeserializeGuard, error_boundary::InvalidObject};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::utils::Predicate as _;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// Runs the controller for kind `K` until `shutdown` resolves.
pub async fn run<K: NodeKind>(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let kind = K::kind(&()).to_string();
    ctx.metrics.register_kind(&kind);
    let owned = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let nodes = Api::<DeserializeGuard<K>>::all(client.clone());
    // The verifier writes proof tallies into status about once a second per node; without
    // this filter every such write would re-run the whole reconcile (five API calls).
    // Spec (generation) and annotation changes are what the reconcile reacts to; children
    // changes still arrive through `owns`, and drift is repaired by the periodic requeue.
    let (store, writer) = kube::runtime::reflector::store();
    let triggers = watcher::watcher(nodes, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::annotations),
            Default::default(),
        );
    let controller = Controller::for_stream(triggers, store)
        .with_config(ControllerConfig::default().concurrency(ctx.config.reconcile_concurrency))
        .owns(Api::<Service>::all(client.clone()), owned.clone());
    let controller = match K::ROLE {
        depin_proto::config::Role::Storage => {
            controller.owns(Api::<StatefulSet>::all(client), owned)
        }
        _ => controller.owns(Api::<Deployment>::all(client), owned),
    };
    tracing::info!(%kind, "controller started");
    let census = count_nodes(controller.store(), ctx.clone(), kind.clone());
    let run = controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                // ObjectNotFound after a delete is expected (kube#1167); keep it quiet.
                tracing::debug!(error = %err, "reconcile finished with error");
            }
        });
    tokio::select! {
        _ = run => {}
        _ = census => {}
    }
    tracing::info!(%kind, "controller stopped");
}

/// Keeps `depin_operator_nodes{namespace,kind,condition,status}` in line with the
/// controller's cache (so deleted nodes drop out without a reconcile).
async fn count_nodes<K: NodeKind>(
    store: kube::runtime::reflector::Store<DeserializeGuard<K>>,
    ctx: Arc<Context>,
    kind: String,
) {
    let mut previous: std::collections::BTreeSet<[String; 4]> = Default::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        let mut counts: std::collections::BTreeMap<[String; 4], i64> = Default::default();
        for guard in store.state() {
            let Ok(node) = &guard.0 else { continue };
            let namespace = node.namespace().unwrap_or_default();
            for condition in node
                .node_status()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default()
            {
                let key = [
                    namespace.clone(),
                    kind.clone(),
                    condition.type_.clone(),
                    condition.status.clone(),
                ];
                *counts.entry(key).or_default() += 1;
            }
        }
        for gone in previous.iter().filter(|k| !counts.contains_key(*k)) {
            let labels: Vec<&str> = gone.iter().map(String::as_str).collect();
            let _ = ctx.metrics.nodes.remove_label_values(&labels);
        }
        for (key, count) in &counts {
            let labels: Vec<&str> = key.iter().map(String::as_str).collect();
            ctx.metrics.nodes.with_label_values(&labels).set(*count);
        }
        previous = counts.into_keys().collect();
    }
}

async fn reconcile<K: NodeKind>(
    guard: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let kind = K::kind(&()).to_string();
    let _timer = ctx
        .metrics
        .reconcile_duration
        .with_label_values(&[&kind])
        .start_timer();
    ctx.metrics.reconciles.with_label_values(&[&kind]).inc();
    let result = match &guard.0 {
        Ok(node) => reconcile_node(node, &ctx).await,
        Err(invalid) => mark_unparsable::<K>(invalid, &ctx).await,
    };
    if let Err(Error::Kube(kube::Error::Api(status))) = &result
        && status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
    {
        // The namespace is going away with everything in it; nothing to repair.
        return Ok(Action::await_change());
    }
    match &result {
        Ok(_) => {
            let key = guard
                .0
                .as_ref()
                .map(|n| object_key(n.meta()))
                .unwrap_or_default();
            ctx.reset_backoff(&kind, &key);
        }
        Err(err) => {
            ctx.metrics
                .reconcile_errors
                .with_label_values(&[&kind, err.reason()])
                .inc();
        }
    }
    result
}

fn error_policy<K: NodeKind>(
    guard: Arc<DeserializeGuard<K>>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    let kind = K::kind(&()).to_string();
    let key = match &guard.0 {
        Ok(node) => object_key(node.meta()),
        Err(invalid) => object_key(&invalid.metadata),
    };
    if !err.retryable() {
        return Action::await_change();
    }
    let delay = ctx.next_backoff(&kind, &key);
    tracing::warn!(%kind, object = %key, error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn object_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

#[tracing::instrument(skip_all, fields(kind = %K::kind(&()), node = %node.name_any(), namespace = node.namespace()))]
async fn reconcile_node<K: NodeKind>(node: &K, ctx: &Context) -> Result<Action> {
    let namespace = node.namespace().unwrap_or_default();
    let name = node.name_any();
    if node.meta().deletion_timestamp.is_some() {
        // Garbage collection is removing the children; re-applying them would fight it.
        return Ok(Action::await_change());
    }
    let current = OwnedStatus::from_current(node.node_status());
    let settings = match super::check_name(&name, K::MAX_NAME, K::MAX_NAME_WHY)
        .and_then(|()| node.validate())
    {
        Ok(settings) => settings,
        Err(invalid) => {
            write_status(node, ctx, &current, &Outcome::Invalid(&invalid), None, None).await?;
            return Err(invalid.into());
        }
    };
    let owner = node.controller_owner_ref(&()).unwrap_or_default();
    let applied = async {
        let accept_new = node
            .annotations()
            .get(identity::ACCEPT_NEW_IDENTITY)
            .is_some_and(|v| v == "true");
        let known = current.public_key.as_deref().filter(|_| !accept_new);
        let identity = identity::ensure(
            &ctx.client,
            &namespace,
            &name,
            &K::kind(&()),
            K::ROLE,
            node.spec(),
            owner,
            known,
        )
        .await?;
        let defaults = AgentDefaults {
            verifier_key: ctx.verifier_key.map(|k| k.to_hex()),
            ..AgentDefaults::from_config(&ctx.config)
        };
        let fitted = node.fit(&ctx.client, settings).await?;
        let desired = desired::build(
            node,
            fitted.settings.clone(),
            &defaults,
            &identity.secret_name,
        )?;
        let workload = apply(ctx, &namespace, desired).await?;
        Ok::<_, Error>((identity, workload, fitted))
    }
    .await;
    match applied {
        Ok((identity, workload, fitted)) => {
            write_status(
                node,
                ctx,
                &current,
                &Outcome::Applied(Rollout::of(&workload)),
                Some(&identity),
                Some(&fitted),
            )
            .await?;
            Ok(Action::requeue(ctx.config.resync))
        }
        Err(err) => {
            write_status(node, ctx, &current, &Outcome::Failed(&err), None, None).await?;
            Err(err)
        }
    }
}

/// Server-side applies the children; returns the workload as the API server stored it.
async fn apply(ctx: &Context, namespace: &str, desired: Desired) -> Result<Workload> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    ssa(ctx, namespace, &desired.config_map, &params).await?;
    for service in &desired.services {
        ssa(ctx, namespace, service, &params).await?;
    }
    for policy in &desired.network_policies {
        ssa(ctx, namespace, policy, &params).await?;
    }
    Ok(match desired.workload {
        Workload::Deployment(d) => Workload::Deployment(ssa(ctx, namespace, &d, &params).await?),
        Workload::StatefulSet(s) => match ssa(ctx, namespace, &s, &params).await {
            // volumeClaimTemplates are immutable: recreate the StatefulSet (its claims
            // stay, so no data is lost) when e.g. the capacity changed.
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 422 => {
                let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace);
                tracing::info!(statefulset = %s.name_any(), "spec change needs a new StatefulSet; recreating");
                api.delete(&s.name_any(), &DeleteParams::foreground())
                    .await?;
                return Err(Error::Kube(kube::Error::Api(status)));
            }
            other => Workload::StatefulSet(other?),
        },
    })
}

async fn ssa<T>(ctx: &Context, namespace: &str, obj: &T, params: &PatchParams) -> Result<T>
where
    T: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<T> = Api::namespaced(ctx.client.clone(), namespace);
    let mut body = serde_json::to_value(obj)?;
    body["apiVersion"] = T::api_version(&()).into();
    body["kind"] = T::kind(&()).into();
    Ok(api
        .patch(&obj.name_any(), params, &Patch::Apply(body))
        .await?)
}

/// Writes the owned status fields if they changed; publishes Events on bad transitions.
async fn write_status<K: NodeKind>(
    node: &K,
    ctx: &Context,
    current: &OwnedStatus,
    outcome: &Outcome<'_>,
    identity: Option<&Identity>,
    fitted: Option<&Fitted>,
) -> Result<()> {
    let generation = node.meta().generation;
    let now = jiff::Timestamp::now();
    // Without a fresh fit (invalid spec, failed apply) the capacity condition stays as it was.
    let mut extra = fitted.map_or_else(
        || vec![(status::CAPACITY_LIMITED, None)],
        |f| f.extra.clone(),
    );
    let threshold = depin_proof::storage::ReputationParams::default().disqualify_below;
    extra.push((
        status::DISQUALIFIED,
        status::disqualified(node.node_status(), threshold),
    ));
    let policy = depin_crds::NodeSpec::reward_policy(node.spec());
    let found = kube::Api::<depin_crds::RewardPolicy>::all(ctx.client.clone())
        .get_metadata_opt(policy)
        .await
        .ok()
        .map(|p| p.is_some());
    extra.push((
        status::POLICY_RESOLVED,
        status::policy_resolved(policy, found),
    ));
    let mut conditions = status::compute(current, outcome, generation, now);
    conditions.extend(status::compute_extra(current, extra, generation, now));
    let mut next = OwnedStatus {
        observed_generation: generation,
        conditions,
        ..current.clone()
    };
    if let Some(capacity) = fitted.and_then(|f| f.capacity.clone()) {
        next.capacity = Some(capacity);
    }
    if let Some(identity) = identity {
        let hex = identity.public_key.to_hex();
        next.key_prefix = Some(hex[..12].to_string());
        next.public_key = Some(hex);
        next.identity_secret = Some(identity.secret_name.clone());
    }
    if let Outcome::Applied(rollout) = outcome {
        next.ready_replicas = Some(rollout.ready);
    }
    next.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    if &next == current {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &node.namespace().unwrap_or_default());
    let body = serde_json::json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": next});
    api.patch_status(
        &node.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    let warning = match outcome {
        Outcome::Invalid(invalid)
            if status::became_true(current, &next.conditions, status::INVALID_SPEC) =>
        {
            Some(("InvalidSpec", invalid.to_string()))
        }
        Outcome::Failed(err)
            if status::became_true(current, &next.conditions, status::DEGRADED) =>
        {
            Some((err.reason(), err.to_string()))
        }
        _ => None,
    };
    if let Some((reason, note)) = warning {
        publish(ctx, &node.object_ref(&()), reason, note).await;
    }
    Ok(())
}

/// Marks an object the watch could not parse, so one bad object never stops the controller.
async fn mark_unparsable<K: NodeKind>(invalid: &InvalidObject, ctx: &Context) -> Result<Action> {
    let meta = &invalid.metadata;
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    tracing::warn!(kind = %K::kind(&()), %namespace, %name, error = %invalid.error, "object does not parse");
    let resource = kube::api::ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
    let condition = serde_json::json!({
        "type": status::INVALID_SPEC, "status": "True", "reason": "Unparsable",
        "message": invalid.error, "lastTransitionTime": jiff::Timestamp::now().to_string(),
    });
    let patch = serde_json::json!({"status": {"conditions": [condition]}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(K::api_version(&()).into()),
        kind: Some(K::kind(&()).into()),
        name: Some(name),
        namespace: Some(namespace),
        uid: meta.uid.clone(),
        ..Default::default()
    };
    publish(ctx, &reference, "Unparsable", invalid.error.clone()).await;
    Err(Error::InvalidObject(invalid.error.clone()))
}

async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    reason: &str,
    note: String,
) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %err, "publishing event failed");
    }
}

//! The **simulation driver**: what a real cluster's controllers and
//! workloads would do, faked on one party's in-memory API server. MP-SPDZ
//! and Istio do not run: the driver marks the key generation Job
//! `<vc>-keygen` succeeded (`status.succeeded: 1` and a `Complete`
//! condition) as soon as it exists, and makes every foundation service the
//! controller applied satisfy its readiness rule, read from the services
//! record ConfigMap (`<vc>-services`, key `objects.json`) the controller
//! writes with the rules of its render settings. It watches the Job and
//! that record, so it acts as soon as either changes (and retries at a slow
//! fallback interval when a step failed); the patches it sends are counted
//! apart from the controller's writes.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Map, Value, json};
use spalding_core::render::ReadinessRule;

use super::Print;
use crate::cluster::lifecycle::{COMPONENT_SERVICES, OBJECTS_KEY, record_name};
use crate::launcher::{job_name, phase};
use spalding_core::ports::KeyGenerationPhase;

use crate::cluster::lifecycle::Listed;

/// How often the driver looks at its API server when nothing it watches
/// changed (a fallback: steps normally follow watch events).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Completes key generation and readies services for one party.
pub struct SimulationDriver {
    client: Client,
    namespace: String,
    vc: String,
    party: String,
    print: Print,
    job_done: bool,
    readied: HashSet<String>,
    writes: Arc<AtomicU64>,
}

impl SimulationDriver {
    /// A driver for `vc` in `namespace` of `party`'s API server.
    pub fn new(client: Client, namespace: &str, vc: &str, party: &str, print: Print) -> Self {
        Self::counting(client, namespace, vc, party, print, Arc::default())
    }

    /// [`SimulationDriver::new`] adding every write it sends to `writes`.
    pub fn counting(
        client: Client,
        namespace: &str,
        vc: &str,
        party: &str,
        print: Print,
        writes: Arc<AtomicU64>,
    ) -> Self {
        Self {
            writes,
            client,
            namespace: namespace.to_owned(),
            vc: vc.to_owned(),
            party: party.to_owned(),
            print,
            job_done: false,
            readied: HashSet::new(),
        }
    }

    /// Steps on every change of the Job or the services record, and at
    /// least every [`POLL_INTERVAL`], until `shutdown` resolves. Failed
    /// requests are retried at the next step (the controller may be
    /// rewriting what the driver reads).
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let named =
            |name: String| watcher::Config::default().fields(&format!("metadata.name={name}"));
        let jobs = watcher(
            Api::<Job>::namespaced(self.client.clone(), &self.namespace),
            named(job_name(&self.vc)),
        )
        .default_backoff()
        .map(|_| ());
        let records = watcher(
            Api::<ConfigMap>::namespaced(self.client.clone(), &self.namespace),
            named(record_name(&self.vc, COMPONENT_SERVICES)),
        )
        .default_backoff()
        .map(|_| ());
        let mut changes = std::pin::pin!(futures::stream::select(jobs, records));
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                Some(()) = changes.next() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            if let Err(error) = self.step().await {
                tracing::debug!(party = %self.party, %error, "simulation driver step");
            }
        }
    }

    /// One look: complete the Job, ready the services.
    pub async fn step(&mut self) -> Result<(), kube::Error> {
        self.complete_key_generation().await?;
        self.ready_services().await
    }

    /// Marks the key generation Job succeeded when it exists and has not.
    pub async fn complete_key_generation(&mut self) -> Result<(), kube::Error> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = job_name(&self.vc);
        let Some(job) = jobs.get_opt(&name).await? else {
            return Ok(());
        };
        if phase(job.status.as_ref()) == KeyGenerationPhase::Succeeded {
            return Ok(());
        }
        let now = now();
        let status = json!({"status": {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "conditions": [{
                "type": "Complete",
                "status": "True",
                "reason": "Simulated",
                "message": "completed by the spalding simulation driver",
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }],
        }});
        self.writes.fetch_add(1, Ordering::Relaxed);
        jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        if !self.job_done {
            self.job_done = true;
            (self.print)(&format!(
                "{}: simulation driver: key generation Job {name} marked succeeded",
                self.party
            ));
        }
        Ok(())
    }

    async fn ready_services(&mut self) -> Result<(), kube::Error> {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(record) = maps
            .get_opt(&record_name(&self.vc, COMPONENT_SERVICES))
            .await?
        else {
            return Ok(());
        };
        let Some(json) = record.data.as_ref().and_then(|d| d.get(OBJECTS_KEY)) else {
            return Ok(());
        };
        let listed: Vec<Listed> = match serde_json::from_str(json) {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(party = %self.party, %error, "unreadable services record");
                return Ok(());
            }
        };
        for object in listed {
            self.ready_service(&object).await?;
        }
        Ok(())
    }

    async fn ready_service(&mut self, object: &Listed) -> Result<(), kube::Error> {
        let Some(status) = ready_status(&object.readiness) else {
            return Ok(());
        };
        let (group, version) = object
            .api_version
            .split_once('/')
            .unwrap_or(("", object.api_version.as_str()));
        let resource = ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            plural: object.plural.clone(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
        let Some(current) = api.get_opt(&object.name).await? else {
            return Ok(());
        };
        let value = serde_json::to_value(&current).unwrap_or(Value::Null);
        if object.readiness.is_ready(&value) {
            return Ok(());
        }
        let params = PatchParams::default();
        let patch = Patch::Merge(&status);
        self.writes.fetch_add(1, Ordering::Relaxed);
        match api.patch_status(&object.name, &params, &patch).await {
            Ok(_) => {}
            // No status subresource: status is part of the main resource.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                api.patch(&object.name, &params, &patch).await?;
            }
            Err(e) => return Err(e),
        }
        if self
            .readied
            .insert(format!("{}/{}", object.kind, object.name))
        {
            (self.print)(&format!(
                "{}: simulation driver: {} {} marked ready",
                self.party, object.kind, object.name
            ));
        }
        Ok(())
    }
}

/// A merge patch making an object satisfy `rule`; `None` when nothing is needed.
pub fn ready_status(rule: &ReadinessRule) -> Option<Value> {
    match rule {
        ReadinessRule::Exists => None,
        ReadinessRule::Condition { condition_type } => Some(json!({"status": {"conditions": [{
            "type": condition_type,
            "status": "True",
            "reason": "Simulated",
            "message": "marked ready by the spalding simulation driver",
            "lastTransitionTime": now(),
        }]}})),
        ReadinessRule::Field { path, expected } => {
            let mut value = expected.clone();
            for segment in path.rsplit('.') {
                let mut map = Map::new();
                map.insert(segment.to_owned(), value);
                value = Value::Object(map);
            }
            Some(value)
        }
    }
}

/// Now, RFC 3339 in whole seconds.
fn now() -> String {
    format!("{:.0}", k8s_openapi::jiff::Timestamp::now())
}

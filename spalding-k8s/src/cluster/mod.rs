//! [`KubeCluster`]: the core's [`spalding_core::ports::Cluster`] port against
//! a Kubernetes API server through kube's client.
//!
//! Every object Spalding writes is applied with server-side apply under one
//! field manager ([`FIELD_MANAGER`]), carries the label
//! `app.kubernetes.io/managed-by: spalding` and the label
//! [`VIRTUAL_CLOUD_LABEL`] naming its VC, and an owner reference to the VC —
//! except the key material (the MAC key share Secret), which must outlive the
//! VC unless the user asks otherwise and so is never garbage-collected with
//! it. The MAC key Secret is created with a plain POST (create-only: an
//! existing Secret is never replaced or read back). Status is applied on the
//! status subresource. [`objects`] builds the objects; `port` implements the
//! port; [`lifecycle`] applies what the core renders (settings, TLS Secret,
//! foundation services, Istio objects), each step through `converge`, which
//! skips objects already applied and tries every write of a pass so that
//! retries under faults accumulate progress; `cleanup` removes what
//! Spalding created when a VC is deleted.

mod cleanup;
pub(crate) mod converge;
pub mod lifecycle;
pub mod objects;
mod port;
mod reads;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::events::Reporter;
use kube::{Api, Client, Resource};
use spalding_core::ports::{ClusterError, DocumentSigner, Event, VcKey};
use spalding_core::sequence::Sequencing;

pub use self::cleanup::Cleanup;
use self::lifecycle::Lifecycle;
use crate::crd::VirtualCloud;

/// The field manager of every server-side apply Spalding makes.
pub const FIELD_MANAGER: &str = "spalding";
/// The standard label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on everything Spalding creates.
pub const MANAGED_BY: &str = "spalding";
/// The label naming the VC an object belongs to.
pub const VIRTUAL_CLOUD_LABEL: &str = "spalding.carbynestack.io/virtual-cloud";
/// The standard label naming an object's role.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The label marking key material (kept when a VC is deleted unless asked otherwise).
pub const KEY_MATERIAL_LABEL: &str = "spalding.carbynestack.io/key-material";
/// The annotation on [`spalding_core::configuration::VCP_CONFIG_MAP`] holding
/// the applied formation as JSON.
pub const FORMATION_ANNOTATION: &str = "spalding.carbynestack.io/formation";
/// The key of the signed partner-info document (JSON) in its ConfigMap.
pub const DOCUMENT_KEY: &str = "document.json";
/// The key of the document's sequence number in its ConfigMap.
pub const SEQUENCE_KEY: &str = "sequence";

/// Name of the ConfigMap holding the published, signed partner-info document.
pub fn document_config_map_name(vc: &str) -> String {
    format!("{vc}-partner-document")
}

/// How long an Event is remembered: the same Event again within this time
/// is not recorded again ([`Known::events`]).
const EVENT_MEMORY: Duration = Duration::from_secs(600);

/// What Spalding remembers of a VC between calls of one reconcile: how to
/// point at it (owner reference, Event reference), the sequence number of
/// the document it last read or published (0: none stored), the
/// reservation of sequence numbers in the VC status
/// ([`spalding_core::sequence`]) and the Events recorded lately.
#[derive(Debug, Clone, Default)]
struct Known {
    owner: Option<OwnerReference>,
    reference: Option<ObjectReference>,
    sequence: Option<u64>,
    /// Events recorded within [`EVENT_MEMORY`] and when: an Event with the
    /// same type, reason and message is not written again (kube's Recorder
    /// would PATCH its series count, one more write saying nothing new).
    events: Vec<(Event, Instant)>,
    reserved: Option<u64>,
}

/// The [`spalding_core::ports::Cluster`] port against Kubernetes.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    /// Who records Events. Each Event goes through a fresh [`Recorder`]:
    /// kube's Recorder keys its series by type, reason and action but not
    /// the message, so a shared one turned "state initializing → starting"
    /// into a count on the earlier "state admission → initializing" Event,
    /// losing the message; repeats are suppressed by [`Known::events`].
    reporter: Reporter,
    signer: Arc<dyn DocumentSigner>,
    known: Arc<Mutex<HashMap<VcKey, Known>>>,
    /// What was parsed of each VC's partners ([`reads`]).
    reads: Arc<Mutex<HashMap<VcKey, reads::PartnerReads>>>,
    lifecycle: Arc<Lifecycle>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster").finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// A cluster adapter using `client`, recording Events as `reporter` and
    /// signing partner-info documents with `signer`.
    pub fn new(client: Client, reporter: Reporter, signer: Arc<dyn DocumentSigner>) -> Self {
        Self {
            reporter,
            client,
            signer,
            known: Arc::default(),
            reads: Arc::default(),
            lifecycle: Arc::default(),
        }
    }

    /// The kube client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn known(&self) -> MutexGuard<'_, HashMap<VcKey, Known>> {
        // Every update is a single insert, so a poisoned lock holds no half-written state.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn partner_reads(&self) -> MutexGuard<'_, HashMap<VcKey, reads::PartnerReads>> {
        // A poisoned lock holds only whole entries: each is one insert.
        self.reads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers how to point at `object`.
    fn remember(&self, vc: &VcKey, object: &VirtualCloud) {
        let mut known = self.known();
        let entry = known.entry(vc.clone()).or_default();
        entry.owner = object.controller_owner_ref(&());
        entry.reference = Some(object.object_ref(&()));
        entry.reserved = object.status.as_ref().and_then(|s| s.document_sequence);
    }

    /// The sequence numbers known of `vc`'s documents.
    fn sequencing(&self, vc: &VcKey) -> Sequencing {
        let known = self.known();
        let entry = known.get(vc);
        Sequencing {
            stored: entry.and_then(|k| k.sequence).filter(|s| *s > 0),
            reserved: entry.and_then(|k| k.reserved),
        }
    }

    /// Whether `event` was recorded for `vc` lately; if not, remembers it
    /// as recorded now. Forgets Events older than [`EVENT_MEMORY`].
    fn recorded_lately(&self, vc: &VcKey, event: &Event) -> bool {
        let now = Instant::now();
        let mut known = self.known();
        let events = &mut known.entry(vc.clone()).or_default().events;
        events.retain(|(_, at)| now.duration_since(*at) < EVENT_MEMORY);
        if events.iter().any(|(e, _)| e == event) {
            return true;
        }
        events.push((event.clone(), now));
        false
    }

    /// Forgets that `event` was recorded (its write failed).
    fn forget_event(&self, vc: &VcKey, event: &Event) {
        if let Some(known) = self.known().get_mut(vc) {
            known.events.retain(|(e, _)| e != event);
        }
    }

    /// Forgets a VC (after its deletion).
    pub fn forget(&self, vc: &VcKey) {
        self.known().remove(vc);
    }

    fn api<K>(&self, vc: &VcKey) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &vc.namespace)
    }

    /// The owner reference to the VC, read from the API server when not known yet.
    async fn owner(&self, vc: &VcKey) -> Result<OwnerReference, ClusterError> {
        if let Some(owner) = self.known().get(vc).and_then(|k| k.owner.clone()) {
            return Ok(owner);
        }
        self.fetch_reference(vc).await?;
        self.known()
            .get(vc)
            .and_then(|k| k.owner.clone())
            .ok_or_else(|| gone(vc))
    }

    /// The object reference Events point at.
    async fn reference(&self, vc: &VcKey) -> Result<ObjectReference, ClusterError> {
        if let Some(reference) = self.known().get(vc).and_then(|k| k.reference.clone()) {
            return Ok(reference);
        }
        self.fetch_reference(vc).await?;
        self.known()
            .get(vc)
            .and_then(|k| k.reference.clone())
            .ok_or_else(|| gone(vc))
    }

    async fn fetch_reference(&self, vc: &VcKey) -> Result<(), ClusterError> {
        let object = self
            .api::<VirtualCloud>(vc)
            .get_opt(&vc.name)
            .await
            .map_err(|e| kube_error(format!("read virtual cloud {}", vc_name(vc)), &e))?;
        if let Some(object) = object {
            self.remember(vc, &object);
        }
        Ok(())
    }
}

/// `namespace/name`.
fn vc_name(vc: &VcKey) -> String {
    format!("{}/{}", vc.namespace, vc.name)
}

fn gone(vc: &VcKey) -> ClusterError {
    ClusterError {
        operation: format!("refer to virtual cloud {}", vc_name(vc)),
        message: "the virtual cloud does not exist (any more)".to_owned(),
        transient: false,
    }
}

/// Whether an API error is worth retrying soon: conflicts, throttling,
/// server-side failures and anything that never reached the server.
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500..),
        _ => true,
    }
}

/// A [`ClusterError`] for a failed API call. The API server's message is
/// kept: Spalding sends no secret in any request whose error is reported here.
fn kube_error(operation: String, error: &kube::Error) -> ClusterError {
    ClusterError {
        operation,
        message: error.to_string(),
        transient: transient(error),
    }
}

/// Whether the API answered 404.
fn not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

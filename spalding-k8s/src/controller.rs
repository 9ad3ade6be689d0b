//! The kube-runtime controller for `VirtualCloud`: **observe → decide →
//! execute** runs in the core's [`Reconciler`]; this module only wires it to
//! the API server. It watches VirtualClouds, the partners and ConfigMaps
//! they own, the key generation Jobs it owns, and admissions (mapped to
//! their VC by `spec.partner`), guards each VC with a finalizer that removes
//! what Spalding created ([`KubeCluster::clean_up`]), and paces itself by
//! [`Settings`]: a VC whose last reconcile acted is looked at again after
//! the short forming interval (partners' documents can only be polled); a VC
//! still forming without acting waits twice as long each time, up to the
//! partner refresh interval, so many forming VCs do not flood partners; a
//! ready VC at rest waits the refresh interval. Errors back off: exponentially for transient ones, at the
//! refresh interval for permanent ones (a spec fix triggers a reconcile
//! anyway). The core writes status only when it changed, so a VC at rest
//! causes no writes and no reconcile loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use spalding_core::condition::Timestamp;
use spalding_core::machine::LocalIdentity;
use spalding_core::ports::{ClusterError, Entropy, MpcLauncher, PartnerTransport, VcKey};
use spalding_core::reconciler::{Outcome, ReconcileError, Reconciler};
use spalding_core::spec::State;
use tracing::{Instrument, info, info_span, warn};

use crate::cluster::{Cleanup, KubeCluster, MANAGED_BY, MANAGED_BY_LABEL};
use crate::crd::{VirtualCloud, VirtualCloudPartner, VirtualCloudPartnerAdmission};

/// The finalizer Spalding puts on every VirtualCloud.
pub const FINALIZER: &str = "spalding.carbynestack.io/cleanup";

/// How the controller paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How often every VC is reconciled (and its partners fetched) at rest.
    pub refresh_interval: Duration,
    /// How soon a VC that is not ready yet, or whose last reconcile acted,
    /// is reconciled again (at most `refresh_interval`): partners'
    /// progress can only be seen by fetching their documents.
    pub forming_interval: Duration,
    /// How long the controller waits after a watch event before it
    /// reconciles, so a burst of events costs one reconcile.
    pub debounce: Duration,
    /// First retry delay after a transient error; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay after transient errors.
    pub max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(60),
            forming_interval: Duration::from_secs(2),
            debounce: Duration::from_millis(200),
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The core's reconcile failed.
    #[error("reconcile of virtual cloud {vc}: {source}")]
    Reconcile {
        /// `namespace/name`.
        vc: String,
        /// What failed.
        source: ReconcileError,
    },
    /// Removing what Spalding created failed.
    #[error("cleanup of virtual cloud {vc}: {source}")]
    Cleanup {
        /// `namespace/name`.
        vc: String,
        /// What failed.
        source: ClusterError,
    },
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The object has no namespace (VirtualClouds are namespaced).
    #[error("virtual cloud {0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    /// Whether retrying soon may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Reconcile { source, .. } => source.is_transient(),
            Self::Cleanup { source, .. } => source.transient,
            Self::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.is_transient(),
                _ => true,
            },
            Self::NoNamespace(_) => false,
        }
    }
}

/// Told about every reconcile's result (the operator's metrics).
pub trait ReconcileObserver: Send + Sync {
    /// `vc` was reconciled at `now` with `outcome`.
    fn reconciled(&self, vc: &VcKey, outcome: &Outcome, now: &Timestamp);
    /// A reconcile of `vc` failed.
    fn failed(&self, vc: &VcKey, error: &Error);
    /// `vc` was deleted and cleaned up.
    fn removed(&self, vc: &VcKey);
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    cluster: Arc<KubeCluster>,
    reconciler: Reconciler,
    settings: Settings,
    failures: Mutex<HashMap<ObjectRef<VirtualCloud>, u32>>,
    observer: Option<Arc<dyn ReconcileObserver>>,
    /// Consecutive reconciles of a forming VC that did nothing.
    quiet: Mutex<HashMap<ObjectRef<VirtualCloud>, u32>>,
}

impl Context {
    /// A context reconciling as `identity` through the given ports.
    pub fn new(
        identity: LocalIdentity,
        cluster: Arc<KubeCluster>,
        transport: Arc<dyn PartnerTransport>,
        launcher: Arc<dyn MpcLauncher>,
        entropy: Arc<dyn Entropy>,
        settings: Settings,
    ) -> Self {
        let reconciler = Reconciler::new(identity, cluster.clone(), transport, launcher, entropy);
        Self {
            client: cluster.client().clone(),
            cluster,
            reconciler,
            settings,
            failures: Mutex::default(),
            observer: None,
            quiet: Mutex::default(),
        }
    }

    /// Tells `observer` about every reconcile.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn ReconcileObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<VirtualCloud>, u32>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The delay before retrying `vc` after `error`, counting consecutive failures.
    pub fn backoff(&self, vc: &VirtualCloud, error: &Error) -> Duration {
        if !error.is_transient() {
            return self.settings.refresh_interval;
        }
        let mut failures = self.failures();
        let count = failures.entry(ObjectRef::from(vc)).or_insert(0);
        let delay = self
            .settings
            .min_backoff
            .saturating_mul(2u32.saturating_pow((*count).min(16)))
            .min(self.settings.max_backoff);
        *count = count.saturating_add(1);
        delay
    }

    /// When to reconcile `vc` again after `outcome`: after the forming
    /// interval when it acted, doubling with every quiet reconcile while it
    /// forms, at the refresh interval once it rests (ready and quiet).
    pub fn next_reconcile(&self, vc: ObjectRef<VirtualCloud>, outcome: &Outcome) -> Duration {
        let refresh = self.settings.refresh_interval;
        let acted = !outcome.plan.actions.is_empty();
        let ready = outcome.state.is_none_or(|state| state == State::Ready);
        let mut quiet = self.quiet.lock().unwrap_or_else(PoisonError::into_inner);
        if acted {
            quiet.remove(&vc);
            return self.settings.forming_interval.min(refresh);
        }
        if ready {
            quiet.remove(&vc);
            return refresh;
        }
        let count = quiet.entry(vc).or_insert(0);
        let delay = self
            .settings
            .forming_interval
            .saturating_mul(2u32.saturating_pow((*count).min(16)))
            .min(refresh);
        *count = count.saturating_add(1);
        delay
    }
}

/// The current time, RFC 3339 in whole seconds as Kubernetes writes it.
pub fn now() -> Timestamp {
    Timestamp::new(format!("{:.0}", k8s_openapi::jiff::Timestamp::now()))
}

/// One reconcile of one VC, behind the finalizer.
pub async fn reconcile(vc: Arc<VirtualCloud>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = vc
        .namespace()
        .ok_or_else(|| Error::NoNamespace(vc.name_any()))?;
    let key = VcKey::new(namespace, vc.name_any());
    let span = info_span!("reconcile", vc = %format!("{}/{}", key.namespace, key.name));
    let api: Api<VirtualCloud> = Api::namespaced(ctx.client.clone(), &key.namespace);
    finalizer(&api, FINALIZER, vc, |event| async {
        match event {
            Finalizer::Apply(_) => {
                let now = now();
                let outcome =
                    ctx.reconciler
                        .reconcile(&key, now.clone())
                        .await
                        .map_err(|source| Error::Reconcile {
                            vc: format!("{}/{}", key.namespace, key.name),
                            source,
                        })?;
                ctx.failures()
                    .remove(&ObjectRef::new(&key.name).within(&key.namespace));
                info!(state = ?outcome.state, actions = outcome.plan.actions.len(), "reconciled");
                if let Some(observer) = &ctx.observer {
                    observer.reconciled(&key, &outcome, &now);
                }
                let vc = ObjectRef::new(&key.name).within(&key.namespace);
                Ok(Action::requeue(ctx.next_reconcile(vc, &outcome)))
            }
            Finalizer::Cleanup(vc) => {
                let done = ctx
                    .cluster
                    .clean_up(&vc)
                    .await
                    .map_err(|source| Error::Cleanup {
                        vc: format!("{}/{}", key.namespace, key.name),
                        source,
                    })?;
                if done == Cleanup::KeptKeyMaterial {
                    info!("kept the MAC key share Secret and the HE key volume");
                }
                if let Some(observer) = &ctx.observer {
                    observer.removed(&key);
                }
                Ok(Action::await_change())
            }
        }
    })
    .instrument(span)
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// What to do after a failed reconcile.
pub fn error_policy(vc: Arc<VirtualCloud>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&vc, error);
    if let Some(observer) = &ctx.observer {
        let key = VcKey::new(vc.namespace().unwrap_or_default(), vc.name_any());
        observer.failed(&key, error);
    }
    warn!(vc = %vc.name_any(), %error, transient = error.is_transient(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The VCs an admission may belong to: its `spec.partner` is `<vc>-<party>`,
/// so every prefix ending before a '-' is a candidate VC name.
pub fn admission_targets(admission: &VirtualCloudPartnerAdmission) -> Vec<ObjectRef<VirtualCloud>> {
    let Some(namespace) = admission.namespace() else {
        return Vec::new();
    };
    let partner = &admission.spec.partner;
    partner
        .match_indices('-')
        .map(|(i, _)| &partner[..i])
        .filter(|vc| !vc.is_empty())
        .map(|vc| ObjectRef::new(vc).within(&namespace))
        .collect()
}

/// The controller of VirtualClouds in `namespace` (all namespaces when
/// `None`), watching the partners, ConfigMaps and Jobs Spalding manages and
/// the admissions there, with the default debounce.
pub fn controller(client: Client, namespace: Option<&str>) -> Controller<VirtualCloud> {
    paced_controller(client, namespace, Settings::default().debounce)
}

/// [`controller`] waiting `debounce` after a watch event before reconciling.
pub fn paced_controller(
    client: Client,
    namespace: Option<&str>,
    debounce: Duration,
) -> Controller<VirtualCloud> {
    fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    Controller::new(
        api::<VirtualCloud>(&client, namespace),
        watcher::Config::default().any_semantic(),
    )
    .with_config(ControllerConfig::default().debounce(debounce))
    .owns(
        api::<VirtualCloudPartner>(&client, namespace),
        managed.clone(),
    )
    .owns(api::<ConfigMap>(&client, namespace), managed.clone())
    // Key generation finishing moves the VC on: reconcile at once.
    .owns(api::<Job>(&client, namespace), managed)
    .watches(
        api::<VirtualCloudPartnerAdmission>(&client, namespace),
        watcher::Config::default(),
        |admission| admission_targets(&admission),
    )
}

/// Runs the controller over all namespaces until the process is asked to stop.
pub async fn run(client: Client, ctx: Arc<Context>) {
    let debounce = ctx.settings.debounce;
    drive(
        paced_controller(client, None, debounce).shutdown_on_signal(),
        ctx,
    )
    .await;
}

/// Runs the controller over `namespace` (all when `None`) until `shutdown`
/// resolves, then lets running reconciles finish.
pub async fn run_until(
    client: Client,
    ctx: Arc<Context>,
    namespace: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let debounce = ctx.settings.debounce;
    drive(
        paced_controller(client, namespace, debounce).graceful_shutdown_on(shutdown),
        ctx,
    )
    .await;
}

async fn drive(controller: Controller<VirtualCloud>, ctx: Arc<Context>) {
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

//! The operator's Prometheus metrics, served as OpenMetrics text on
//! `GET /metrics` (its own port), with the `prometheus-client` crate.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `spalding_reconciles_total` | counter | `namespace`, `virtual_cloud` |
//! | `spalding_reconcile_errors_total` | counter | `namespace`, `virtual_cloud`, `transient` |
//! | `spalding_partner_fetch_duration_seconds` | histogram | `partner` (its endpoint) |
//! | `spalding_partner_fetch_failures_total` | counter | `partner` |
//! | `spalding_virtual_clouds` | gauge | `state` |
//! | `spalding_admissions_bound_total` | counter | `namespace`, `virtual_cloud` |
//! | `spalding_key_generations_total` | counter | `namespace`, `virtual_cloud`, `outcome` (`launched`, `succeeded`, `failed`) |
//! | `spalding_leader` | gauge | — (1 while this replica leads) |
//!
//! Reconcile series come from the controller through
//! [`crate::controller::ReconcileObserver`], so only the leader moves them;
//! fetch series from [`MeteredTransport`], which wraps the partner
//! transport. Labels never carry key material or certificates.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use spalding_core::condition::{ConditionStatus, Timestamp, reasons, types};
use spalding_core::document::PartnerDocument;
use spalding_core::machine::Action;
use spalding_core::ports::{PartnerTransport, TransportError, VcKey};
use spalding_core::reconciler::Outcome;
use spalding_core::spec::{Endpoint, State};
use tokio::net::TcpListener;

use crate::controller::{Error as ReconcileFailure, ReconcileObserver};

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// The OpenMetrics text content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VcLabels {
    namespace: String,
    virtual_cloud: String,
}

impl VcLabels {
    fn of(vc: &VcKey) -> Self {
        Self {
            namespace: vc.namespace.clone(),
            virtual_cloud: vc.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    namespace: String,
    virtual_cloud: String,
    transient: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabels {
    partner: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyGenerationLabels {
    namespace: String,
    virtual_cloud: String,
    outcome: String,
}

type Histograms = Family<PartnerLabels, Histogram, fn() -> Histogram>;

fn fetch_histogram() -> Histogram {
    // 5 ms … ~20 s: partner fetches time out well before the last bucket.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

const STATES: [State; 4] = [
    State::Admission,
    State::Initializing,
    State::Starting,
    State::Ready,
];

/// Every series of the operator, in one registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<VcLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    fetch_duration: Histograms,
    fetch_failures: Family<PartnerLabels, Counter>,
    virtual_clouds: Family<StateLabels, Gauge>,
    admissions_bound: Family<VcLabels, Counter>,
    key_generations: Family<KeyGenerationLabels, Counter>,
    leader: Gauge,
    states: Mutex<HashMap<VcKey, State>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("spalding");
        let reconciles = Family::<VcLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let fetch_duration: Histograms = Family::new_with_constructor(fetch_histogram);
        let fetch_failures = Family::<PartnerLabels, Counter>::default();
        let virtual_clouds = Family::<StateLabels, Gauge>::default();
        let admissions_bound = Family::<VcLabels, Counter>::default();
        let key_generations = Family::<KeyGenerationLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles of a VirtualCloud that completed",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles of a VirtualCloud that failed",
            reconcile_errors.clone(),
        );
        registry.register(
            "partner_fetch_duration_seconds",
            "Time to fetch and verify a partner's document, successful or not",
            fetch_duration.clone(),
        );
        registry.register(
            "partner_fetch_failures",
            "Partner document fetches that failed",
            fetch_failures.clone(),
        );
        registry.register(
            "virtual_clouds",
            "VirtualClouds by state, as last reconciled by this replica",
            virtual_clouds.clone(),
        );
        registry.register(
            "admissions_bound",
            "Unpinned admissions bound to the fingerprint the partner record showed",
            admissions_bound.clone(),
        );
        registry.register(
            "key_generations",
            "MP-SPDZ key generation launches and their outcomes",
            key_generations.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and reconciles",
            leader.clone(),
        );
        for state in STATES {
            virtual_clouds
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(0);
        }
        Self {
            registry,
            reconciles,
            reconcile_errors,
            fetch_duration,
            fetch_failures,
            virtual_clouds,
            admissions_bound,
            key_generations,
            leader,
            states: Mutex::default(),
        }
    }

    /// Records whether this replica leads. A replica that stops leading
    /// forgets the VC states it saw: the new leader reports them.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        if !leading {
            self.states
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            for state in STATES {
                self.virtual_clouds
                    .get_or_create(&StateLabels {
                        state: state.to_string(),
                    })
                    .set(0);
            }
        }
    }

    /// Records one partner fetch.
    pub fn fetched(&self, endpoint: &Endpoint, took: Duration, ok: bool) {
        let labels = PartnerLabels {
            partner: endpoint.as_str().to_owned(),
        };
        self.fetch_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.fetch_failures.get_or_create(&labels).inc();
        }
    }

    fn set_state(&self, vc: &VcKey, state: Option<State>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(state) => states.insert(vc.clone(), state),
            None => states.remove(vc),
        };
        for state in STATES {
            let count = states.values().filter(|s| **s == state).count();
            self.virtual_clouds
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    fn key_generation(&self, vc: &VcKey, outcome: &str) {
        self.key_generations
            .get_or_create(&KeyGenerationLabels {
                namespace: vc.namespace.clone(),
                virtual_cloud: vc.name.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl ReconcileObserver for Metrics {
    fn reconciled(&self, vc: &VcKey, outcome: &Outcome, now: &Timestamp) {
        self.reconciles.get_or_create(&VcLabels::of(vc)).inc();
        self.set_state(vc, outcome.state);
        for action in &outcome.plan.actions {
            match action {
                Action::BindAdmission { .. } => {
                    self.admissions_bound.get_or_create(&VcLabels::of(vc)).inc();
                }
                Action::LaunchKeyGeneration(_) => self.key_generation(vc, "launched"),
                Action::UpdateStatus(status) => {
                    // An outcome counts once: when its condition moved in this reconcile.
                    let keys = status.conditions.iter().find(|c| {
                        c.type_ == types::KEYS_GENERATED && c.last_transition_time == *now
                    });
                    match keys {
                        Some(c) if c.status == ConditionStatus::True => {
                            self.key_generation(vc, "succeeded");
                        }
                        Some(c) if c.reason == reasons::KEY_GENERATION_FAILED => {
                            self.key_generation(vc, "failed");
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }

    fn failed(&self, vc: &VcKey, error: &ReconcileFailure) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                namespace: vc.namespace.clone(),
                virtual_cloud: vc.name.clone(),
                transient: error.is_transient().to_string(),
            })
            .inc();
    }

    fn removed(&self, vc: &VcKey) {
        self.set_state(vc, None);
    }
}

/// A [`PartnerTransport`] recording each fetch's latency and failure.
pub struct MeteredTransport<T: ?Sized> {
    inner: Arc<T>,
    metrics: Arc<Metrics>,
}

impl<T: ?Sized> MeteredTransport<T> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<T>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl<T: PartnerTransport + ?Sized> PartnerTransport for MeteredTransport<T> {
    async fn fetch(
        &self,
        vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, TransportError> {
        let started = Instant::now();
        let result = self.inner.fetch(vc, endpoint).await;
        self.metrics
            .fetched(endpoint, started.elapsed(), result.is_ok());
        result
    }
}

/// The answer to one request to the metrics server.
pub fn respond<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, METRICS_PATH) => match metrics.encode() {
            Ok(text) => (StatusCode::OK, CONTENT_TYPE, text),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "cannot encode metrics".to_owned(),
            ),
        },
        (_, METRICS_PATH) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let answer = move |request: &Request<hyper::body::Incoming>| respond(&metrics, request);
    super::health::serve_http("metrics", listener, answer, shutdown).await;
}

#[cfg(test)]
mod tests;

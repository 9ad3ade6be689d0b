//! An in-memory Kubernetes API server on a loopback port (plain HTTP), for
//! `spalding simulate` and end-to-end tests: kube's [`Client`] and
//! `kubectl --server http://127.0.0.1:<port>` use it unchanged.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use spalding_k8s::apiserver::{ApiServer, simulation_crds};
//! let server = ApiServer::start(simulation_crds()?).await?;
//! let client = server.client()?;            // a kube::Client for it
//! std::fs::write("kubeconfig", server.kubeconfig())?; // for kubectl
//! println!("{} writes so far", server.writes());
//! # Ok(()) }
//! ```
//!
//! # A subset of the real API server
//!
//! **Kinds**: ConfigMap, Secret, PersistentVolumeClaim, Service, Pod, Event,
//! Namespace (core `v1`), Job (`batch/v1`), Event (`events.k8s.io/v1`),
//! Lease (`coordination.k8s.io/v1`), CustomResourceDefinition, and every
//! custom resource whose CRD is given at start or created through the API
//! ([`resources`]). **Verbs**: get, list, watch, create, update (PUT),
//! patch, delete, deletecollection, on objects and on `/status` where the
//! kind has that subresource ([`http`]). Writes go through [`ops`]: the
//! server sets `uid`, `creationTimestamp`, `generation` and one global
//! `resourceVersion` counter ([`store`]); PUT and patches with a stale
//! `metadata.resourceVersion` get 409 Conflict; writes to the main resource
//! keep the stored status and writes to `/status` change nothing but
//! status; `generation` moves only when something other than metadata and
//! status changes; a write that changes nothing keeps the resourceVersion
//! and sends no watch event. Delete honours finalizers (`deletionTimestamp`
//! first, removal when the last finalizer goes) and collects dependents by
//! `ownerReferences` at once (`Background` and `Foreground` alike;
//! `Orphan` removes the references). Patches: JSON merge patch, JSON patch,
//! and server-side apply as described in [`patch`]. Watches: see [`watch`].
//! Lists and selectors: see [`selector`]. Errors are `Status` objects
//! ([`error`]). Custom resources are validated and pruned per [`schema`]
//! (422 Invalid); built-in kinds must decode as their k8s-openapi types
//! (400 otherwise) and Secrets' `stringData` is folded into `data`.
//! [`Config::faults`] injects faults (slow answers, 500s, 409 Conflicts,
//! lost answers, dropped and expired watches) deterministically from a seed
//! ([`faults`]), except into requests carrying [`UNFAULTED_HEADER`]
//! ([`ApiServer::unfaulted_client`]: a simulation's harness, so that only
//! the operator under test meets the faults).
//!
//! **Left out**: authentication and authorization (anyone on loopback may
//! do anything); admission (no defaults, no quota, no LimitRanges, no
//! webhooks) and the built-in kinds' field validation; namespaces are not
//! required to exist and deleting one deletes nothing else; no controllers
//! run (no Pods for Jobs, no endpoints, nothing becomes ready — that is the
//! simulation driver's job); CRD versions are served without conversion;
//! deleting a CRD does not unregister it; `metadata.managedFields`, apply
//! conflicts and list merge strategies; CEL validation rules, `format` and
//! defaulting; pagination (`limit`/`continue`), `dryRun`,
//! `resourceVersionMatch`, Table output, protobuf, the aggregated and
//! OpenAPI discovery documents (`/openapi/*` is 404, so use
//! `kubectl --validate=false` for create/apply); HTTP/2 and TLS. Both Event
//! kinds are stored separately (the real server shares one storage).

pub mod crds;
pub mod delete;
pub mod error;
pub mod faults;
pub mod http;
pub mod ops;
pub mod patch;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod store;
pub mod watch;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;

pub use self::crds::{istio_crds, klyshko_crds, simulation_crds};
use self::ops::State;
use self::resources::{CrdError, Registry};

/// The request header exempting a request from [`Config::faults`].
pub const UNFAULTED_HEADER: &str = "x-spalding-unfaulted";

/// How the server behaves; the defaults suit simulations and tests.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free one.
    pub address: SocketAddr,
    /// How many changes watches can resume from before 410 Expired.
    pub history: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// The largest request body accepted (413 beyond).
    pub max_body: usize,
    /// Faults to inject ([`faults`]); none by default.
    pub faults: faults::FaultPlan,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            history: store::HISTORY,
            bookmark_interval: Duration::from_secs(30),
            max_body: 3 * 1024 * 1024,
            faults: faults::FaultPlan::none(),
        }
    }
}

/// Why the server could not start or hand out a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the listening socket failed.
    #[error("in-memory API server: binding {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// A CRD given at start is unusable.
    #[error("in-memory API server: {0}")]
    Crd(#[from] CrdError),
    /// A bundled CRD file does not parse.
    #[error("in-memory API server: parsing bundled CRD {file}: {source}")]
    CrdFile {
        /// The file.
        file: &'static str,
        /// What failed.
        source: serde_norway::Error,
    },
    /// Building a kube client for the server failed.
    #[error("in-memory API server: kube client for {url}: {source}")]
    Client {
        /// The server's URL.
        url: String,
        /// What failed.
        source: kube::Error,
    },
    /// A request to the server failed.
    #[error("in-memory API server: {0}")]
    Request(#[from] error::ApiError),
}

/// What the connection tasks share.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    writes: AtomicU64,
    faults: faults::Faults,
    shutdown: signal::Receiver<bool>,
    config: Config,
    address: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running in-memory API server; dropping it stops it.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    stop: signal::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Starts a server on a free loopback port serving `crds` besides the built-in kinds.
    pub async fn start(
        crds: impl IntoIterator<Item = CustomResourceDefinition>,
    ) -> Result<Self, Error> {
        Self::start_with(Config::default(), crds).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(
        config: Config,
        crds: impl IntoIterator<Item = CustomResourceDefinition>,
    ) -> Result<Self, Error> {
        let mut registry = Registry::builtin();
        let mut state_crds = Vec::new();
        for crd in crds {
            registry.register(&crd)?;
            state_crds.push(crd);
        }
        let listener = TcpListener::bind(config.address)
            .await
            .map_err(|source| Error::Bind {
                address: config.address,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| Error::Bind {
            address: config.address,
            source,
        })?;
        let (stop, shutdown) = signal::channel(false);
        let mut state = State::new(registry, config.history);
        for crd in state_crds {
            // The CRD objects themselves, so `kubectl get crd` lists them.
            let value = serde_json::to_value(&crd).unwrap_or_default();
            if let Some(rt) =
                state
                    .registry
                    .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            {
                let target = ops::Target {
                    rt,
                    version: "v1".into(),
                    namespace: String::new(),
                    name: String::new(),
                    status: false,
                };
                state.create(&target, value)?;
            }
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            writes: AtomicU64::new(0),
            faults: faults::Faults::new(config.faults.clone()),
            shutdown,
            config,
            address: address.to_string(),
        });
        let task = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            shared,
            address,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kube client for the server, default namespace `default`.
    pub fn client(&self) -> Result<Client, Error> {
        self.client_with(Vec::new())
    }

    /// A kube client whose requests are never faulted (they carry
    /// [`UNFAULTED_HEADER`]); still counted as [`Self::writes`].
    pub fn unfaulted_client(&self) -> Result<Client, Error> {
        self.client_with(vec![(
            ::http::HeaderName::from_static(UNFAULTED_HEADER),
            ::http::HeaderValue::from_static("true"),
        )])
    }

    fn client_with(
        &self,
        headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    ) -> Result<Client, Error> {
        let url = self.url();
        let error = |source| Error::Client {
            url: url.clone(),
            source,
        };
        let uri: ::http::Uri = url
            .parse()
            .map_err(|e: ::http::uri::InvalidUri| error(kube::Error::Service(e.into())))?;
        let mut config = kube::Config::new(uri);
        config.headers = headers;
        Client::try_from(config).map_err(error)
    }

    /// A kubeconfig (YAML) for `kubectl --kubeconfig`: one cluster, context
    /// and user named `spalding-inmemory`, namespace `default`, no credentials.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: spalding-inmemory\n  cluster:\n    server: {url}\ncontexts:\n- name: spalding-inmemory\n  context:\n    cluster: spalding-inmemory\n    user: spalding-inmemory\n    namespace: default\ncurrent-context: spalding-inmemory\nusers:\n- name: spalding-inmemory\n  user: {{}}\n",
            url = self.url()
        )
    }

    /// How many write requests (POST, PUT, PATCH, DELETE) it has received,
    /// successful or not.
    pub fn writes(&self) -> u64 {
        self.shared.writes.load(Ordering::Relaxed)
    }

    /// The faults injected so far ([`Config::faults`]).
    pub fn fault_counts(&self) -> faults::FaultCounts {
        self.shared.faults.counts()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv()
    }

    /// Every stored object (CRDs included), ordered by group, resource,
    /// namespace and name.
    pub fn objects(&self) -> Vec<Value> {
        self.shared
            .lock()
            .store
            .all()
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Stops accepting connections and ends open watches.
    pub fn shutdown(&self) {
        // No receivers left means everything has stopped already.
        let _ = self.stop.send(true);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown();
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| http::handle(shared.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}

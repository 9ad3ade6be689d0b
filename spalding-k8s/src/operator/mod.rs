//! The operator: everything `spalding operator` runs, as a library, so it can
//! be embedded and tested. [`run`] loads the VCP [`identity`] (PEM files, or
//! a Secret created with a generated identity when absent), binds the
//! partner-info and probe listeners, and then runs until `shutdown`
//! resolves:
//!
//! - the VirtualCloud [`crate::controller`] over the watched namespace (or
//!   all), reconciling through [`KubeCluster`] (documents signed by
//!   [`VcpSigner`]), [`HttpsTransport`], the given [`MpcLauncher`] and
//!   [`OsEntropy`];
//! - the [`PartnerInfoServer`] serving each VC's published, signed document
//!   from a reflector store ([`documents`]), over TLS with the VCP
//!   certificate or, behind a TLS-terminating ingress, plain HTTP;
//! - the probe server ([`health`]): `/healthz`, and `/readyz` once the
//!   published documents are synced;
//! - the Prometheus [`metrics`] server, when given an address.
//!
//! With leader election ([`leader`]) every replica serves partner-info,
//! probes and metrics, and only the holder of the Lease runs the controller.
//! On shutdown it first turns unready, then stops the controller (running
//! reconciles finish), releases the Lease, and stops the servers (open
//! requests finish).
//!
//! A program embedding the operator (the simulation) calls [`run_with`]
//! instead, with an [`Embedding`]: listeners it bound itself, and its own
//! controller retry timing. Everything else is the same code.

pub mod documents;
pub mod health;
pub mod identity;
pub mod leader;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Reporter;
use spalding_core::machine::LocalIdentity;
use spalding_core::name::PartyName;
use spalding_core::ports::{MpcLauncher, PartnerTransport};
use spalding_core::render::RenderSettings;
use spalding_core::spec::Endpoint;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use self::documents::PublishedDocuments;
use self::health::Readiness;
pub use self::identity::{IdentityOrigin, IdentitySource};
use self::leader::{LeaderElector, LeaseSettings, SystemClock};
use self::metrics::{MeteredTransport, Metrics};
use crate::cluster::KubeCluster;
use crate::controller::{Context, Settings};
use crate::entropy::OsEntropy;
use crate::identity::{IdentityError, VcpIdentity};
use crate::launcher::{KubeLauncher, LauncherSettings};
use crate::server::{PartnerInfoServer, server_tls_config};
use crate::signing::VcpSigner;
use crate::transport::{HttpsTransport, TransportBuildError, TransportOptions};

/// The name Events are reported under.
pub const CONTROLLER_NAME: &str = "spalding";

/// How long the controller may take to stop after shutdown is asked for
/// (running reconciles finish) before it is abandoned.
pub const CONTROLLER_STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the operator's key-generation launcher comes from.
pub enum LauncherSource {
    /// This launcher, as it is (a simulation, or an embedding's own).
    Given(Arc<dyn MpcLauncher>),
    /// A [`KubeLauncher`] made once the VCP identity is loaded: it writes the
    /// TLS Secret the key-generation Gateway and DestinationRules name from
    /// that identity before each launch (the configuration step writes it
    /// only after key generation).
    Kube {
        /// What the launcher renders.
        render: RenderSettings,
        /// Image, command, volume and retry settings of the Job.
        settings: Box<LauncherSettings>,
    },
}

impl LauncherSource {
    fn launcher(self, client: &Client, identity: &VcpIdentity) -> Arc<dyn MpcLauncher> {
        match self {
            Self::Given(launcher) => launcher,
            Self::Kube { render, settings } => Arc::new(
                KubeLauncher::new(client.clone(), render, *settings).with_identity(identity),
            ),
        }
    }
}

/// How the partner-info endpoint is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerInfoTls {
    /// HTTPS presenting the VCP certificate: the party serves directly.
    VcpCertificate,
    /// Plain HTTP, for an ingress that terminates TLS in front of it. The
    /// documents are signed, so their integrity does not rest on TLS.
    PlainHttp,
}

/// Everything the operator needs to know; `spalding operator` fills it from
/// flags and environment variables.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// This party's name.
    pub party: PartyName,
    /// This party's public Spalding endpoint, as partners write it.
    pub endpoint: Endpoint,
    /// The namespace whose VirtualClouds are reconciled; all when `None`.
    pub namespace: Option<String>,
    /// Where the VCP identity comes from.
    pub identity: IdentitySource,
    /// Where the partner-info server listens.
    pub partner_info_address: SocketAddr,
    /// How the partner-info server speaks.
    pub partner_info_tls: PartnerInfoTls,
    /// Where `/healthz` and `/readyz` are served.
    pub health_address: SocketAddr,
    /// How often every VC's partners are fetched at rest.
    pub refresh_interval: Duration,
    /// How soon a forming VC is reconciled (and its partners fetched) again;
    /// it doubles while nothing happens, up to `refresh_interval`.
    pub forming_interval: Duration,
    /// How long the controller waits after a watch event before it
    /// reconciles, so a burst of events costs one reconcile.
    pub debounce: Duration,
    /// How partners are fetched (development: plain HTTP, extra CAs).
    pub transport: TransportOptions,
    /// This replica's name in Events (e.g. the pod name).
    pub instance: Option<String>,
    /// Where `/metrics` is served; not at all when `None`.
    pub metrics_address: Option<SocketAddr>,
    /// The Lease only whose holder reconciles; every replica reconciles
    /// when `None` (run one replica then).
    pub leader_election: Option<LeaseSettings>,
}

impl OperatorConfig {
    /// The controller's pacing this configuration asks for; retry delays
    /// are [`Settings::default`]'s.
    pub fn settings(&self) -> Settings {
        Settings {
            refresh_interval: self.refresh_interval,
            forming_interval: self.forming_interval,
            debounce: self.debounce,
            ..Settings::default()
        }
    }
}

/// Why the operator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No Kubernetes client configuration (kubeconfig or in-cluster).
    #[error("cannot configure a Kubernetes client (kubeconfig or in-cluster service account): {0}")]
    Connect(String),
    /// The identity could not be loaded or generated.
    #[error("VCP identity from {origin}: {source}")]
    Identity {
        /// Where it was read from.
        origin: String,
        /// What was wrong.
        source: IdentityError,
    },
    /// The identity Secret lacks a key.
    #[error("Secret {secret} has no {key}; it must be a kubernetes.io/tls Secret")]
    SecretMissingKey {
        /// `namespace/name`.
        secret: String,
        /// The missing key.
        key: &'static str,
    },
    /// Reading or creating the identity Secret failed.
    #[error("{operation}: {message}")]
    SecretApi {
        /// What was attempted.
        operation: String,
        /// Why it failed (never key material).
        message: String,
    },
    /// The partner transport could not be built (e.g. a bad CA bundle).
    #[error("partner transport: {0}")]
    Transport(#[from] TransportBuildError),
    /// The partner-info TLS configuration was refused.
    #[error("partner-info TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A listener could not be bound.
    #[error("cannot listen for {role} on {address}: {source}")]
    Bind {
        /// `partner-info` or `probes`.
        role: &'static str,
        /// The address.
        address: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The partner-info server failed.
    #[error("partner-info server: {0}")]
    Serve(#[source] std::io::Error),
    /// The leader election settings are inconsistent.
    #[error(transparent)]
    LeaderElection(#[from] leader::LeaderError),
}

/// A client from the kubeconfig (`KUBECONFIG`, `~/.kube/config`, its current
/// context) or, inside a pod, the service account.
pub async fn connect() -> Result<Client, OperatorError> {
    Client::try_default()
        .await
        .map_err(|e| OperatorError::Connect(e.to_string()))
}

/// The host of `endpoint`, without port or IPv6 brackets: the name the
/// generated certificate is issued for.
pub fn endpoint_host(endpoint: &Endpoint) -> String {
    let authority = endpoint.authority();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .to_owned()
}

/// Binds `address` for `role`.
async fn bind(role: &'static str, address: SocketAddr) -> Result<TcpListener, OperatorError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| OperatorError::Bind {
            role,
            address,
            source,
        })
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Listeners bound before the operator starts, used instead of binding
/// [`OperatorConfig::partner_info_address`] and
/// [`OperatorConfig::health_address`].
#[derive(Debug)]
pub struct Listeners {
    /// For the partner-info server.
    pub partner_info: TcpListener,
    /// For the probe server.
    pub health: TcpListener,
}

/// Wraps the operator's partner transport (the simulation injects outages).
pub type TransportWrapper =
    Box<dyn FnOnce(Arc<dyn PartnerTransport>) -> Arc<dyn PartnerTransport> + Send>;

/// What a program embedding the operator supplies instead of what [`run`]
/// makes itself; the default is exactly [`run`].
#[derive(Default)]
pub struct Embedding {
    /// Pre-bound listeners (the configured addresses are then not bound).
    pub listeners: Option<Listeners>,
    /// Controller timing (pacing, debounce, retry delays) instead of
    /// [`Settings::default`] with the intervals and debounce of
    /// [`OperatorConfig`].
    pub settings: Option<Settings>,
    /// Wraps the HTTPS transport built from [`OperatorConfig::transport`]
    /// (inside the metrics, so wrapped failures are counted too).
    pub wrap_transport: Option<TransportWrapper>,
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedding")
            .field("listeners", &self.listeners)
            .field("settings", &self.settings)
            .field("wrap_transport", &self.wrap_transport.is_some())
            .finish()
    }
}

/// Runs the operator until `shutdown` resolves; see the module documentation.
pub async fn run(
    config: OperatorConfig,
    client: Client,
    launcher: LauncherSource,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    run_with(config, client, launcher, Embedding::default(), shutdown).await
}

/// [`run`] with what an embedding supplies.
pub async fn run_with(
    config: OperatorConfig,
    client: Client,
    launcher: LauncherSource,
    embedding: Embedding,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    if let Some(lease) = &config.leader_election {
        lease.validate()?;
    }
    let host = endpoint_host(&config.endpoint);
    let (identity, origin) =
        identity::load(&config.identity, &client, config.party.as_str(), &[host]).await?;
    info!(
        party = %config.party,
        endpoint = %config.endpoint,
        fingerprint = %identity.fingerprint(),
        origin = ?origin,
        "VCP identity loaded"
    );
    let metrics = Arc::new(Metrics::new());
    let https: Arc<dyn PartnerTransport> = Arc::new(HttpsTransport::new(config.transport.clone())?);
    let fetching = match embedding.wrap_transport {
        Some(wrap) => wrap(https),
        None => https,
    };
    let transport = Arc::new(MeteredTransport::new(fetching, Arc::clone(&metrics)));
    if config.transport.allow_plain_http {
        warn!("development option: partners may be fetched over plain HTTP");
    }
    let tls = match config.partner_info_tls {
        PartnerInfoTls::VcpCertificate => Some(server_tls_config(&identity)?),
        PartnerInfoTls::PlainHttp => None,
    };
    let (partner_listener, health_listener) = match embedding.listeners {
        Some(Listeners {
            partner_info,
            health,
        }) => (partner_info, health),
        None => (
            bind("partner-info", config.partner_info_address).await?,
            bind("probes", config.health_address).await?,
        ),
    };
    let partner_info_address = partner_listener
        .local_addr()
        .unwrap_or(config.partner_info_address);
    let metrics_listener = match config.metrics_address {
        Some(address) => Some(bind("metrics", address).await?),
        None => None,
    };

    let settings = embedding.settings.unwrap_or_else(|| config.settings());
    let launcher = launcher.launcher(&client, &identity);
    let ctx = context(
        &config, &client, &identity, transport, launcher, settings, &metrics,
    );
    let namespace = config.namespace.clone();
    let (store, reflector) = documents::reflect(client.clone(), namespace.as_deref());
    let server = PartnerInfoServer::new(Arc::new(PublishedDocuments::new(store.clone())));
    let readiness = Arc::new(Readiness::default());

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let signal = {
        let (stop_tx, readiness) = (Arc::clone(&stop_tx), Arc::clone(&readiness));
        tokio::spawn(async move {
            shutdown.await;
            info!("shutting down");
            readiness.set(false);
            stop_tx.send_replace(true);
        })
    };
    let ready = {
        let readiness = Arc::clone(&readiness);
        let stop = stopped(stop_rx.clone());
        async move {
            tokio::select! {
                synced = store.wait_until_ready() => {
                    if synced.is_ok() {
                        readiness.set(true);
                        info!("ready");
                    }
                }
                () = stop => {}
            }
        }
    };
    let reflector = {
        let stop = stopped(stop_rx.clone());
        async move {
            tokio::select! {
                () = reflector => {}
                () = stop => {}
            }
        }
    };
    let controller = {
        let leading = reconcile_while_leading(
            client,
            ctx,
            namespace,
            config.leader_election.clone(),
            Arc::clone(&metrics),
            stop_rx.clone(),
        );
        let stop = stopped(stop_rx.clone());
        async move {
            // kube-runtime's controller does not end when told to stop
            // before its first list of VirtualClouds completed (an API
            // server that does not answer): give it a grace period, then
            // drop it (a held Lease then expires instead of being released).
            tokio::select! {
                () = leading => {}
                () = async {
                    stop.await;
                    tokio::time::sleep(CONTROLLER_STOP_GRACE).await;
                } => warn!(grace = ?CONTROLLER_STOP_GRACE, "the controller did not stop in time; abandoned"),
            }
        }
    };
    let serving = {
        let stop = stopped(stop_rx.clone());
        let stop_tx = Arc::clone(&stop_tx);
        async move {
            info!(address = %partner_info_address, tls = tls.is_some(), "partner-info server listening");
            let result = match tls {
                Some(tls) => server.serve_tls(partner_listener, tls, stop).await,
                None => server.serve_plain(partner_listener, stop).await,
            };
            // Without the partner-info server the party cannot form VCs: stop all.
            stop_tx.send_replace(true);
            result.map_err(OperatorError::Serve)
        }
    };
    let probes = health::serve(
        health_listener,
        Arc::clone(&readiness),
        stopped(stop_rx.clone()),
    );
    let metrics_server = {
        let stop = stopped(stop_rx.clone());
        async move {
            if let Some(listener) = metrics_listener {
                metrics::serve(listener, metrics, stop).await;
            }
        }
    };
    let ((), (), (), served, (), ()) = tokio::join!(
        ready,
        reflector,
        controller,
        serving,
        probes,
        metrics_server
    );
    // The controller stopping on its own (not by `stop`) ends everything too.
    stop_tx.send_replace(true);
    signal.abort();
    info!("stopped");
    served
}

/// Runs the controller until `stop`: always, or with `lease` only while
/// this replica holds it (releasing it at the end).
async fn reconcile_while_leading(
    client: Client,
    ctx: Arc<Context>,
    namespace: Option<String>,
    lease: Option<LeaseSettings>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let Some(lease) = lease else {
        metrics.set_leader(true);
        crate::controller::run_until(client, ctx, namespace.as_deref(), stopped(stop)).await;
        metrics.set_leader(false);
        return;
    };
    info!(lease = %format!("{}/{}", lease.namespace, lease.name), identity = %lease.identity, "leader election");
    let elector = Arc::new(LeaderElector::new(
        client.clone(),
        lease,
        Arc::new(SystemClock),
    ));
    leader::lead_while_elected(elector, stop, |deposed| {
        let (client, ctx, namespace, metrics) = (
            client.clone(),
            Arc::clone(&ctx),
            namespace.clone(),
            Arc::clone(&metrics),
        );
        async move {
            metrics.set_leader(true);
            crate::controller::run_until(client, ctx, namespace.as_deref(), deposed).await;
            metrics.set_leader(false);
        }
    })
    .await;
}

/// The controller context for `config`.
fn context(
    config: &OperatorConfig,
    client: &Client,
    identity: &VcpIdentity,
    transport: Arc<dyn PartnerTransport>,
    launcher: Arc<dyn MpcLauncher>,
    settings: Settings,
    metrics: &Arc<Metrics>,
) -> Arc<Context> {
    let reporter = Reporter {
        controller: CONTROLLER_NAME.to_owned(),
        instance: config.instance.clone(),
    };
    let cluster = Arc::new(
        KubeCluster::new(client.clone(), reporter, Arc::new(VcpSigner::new(identity)))
            .with_lifecycle(RenderSettings::default(), identity),
    );
    let local = LocalIdentity {
        name: config.party.clone(),
        endpoint: config.endpoint.clone(),
        certificate: identity.certificate().clone(),
    };
    let observer: Arc<dyn crate::controller::ReconcileObserver> = metrics.clone();
    Arc::new(
        Context::new(
            local,
            cluster,
            transport,
            launcher,
            Arc::new(OsEntropy),
            settings,
        )
        .with_observer(observer),
    )
}

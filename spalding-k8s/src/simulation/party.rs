//! One simulated party: its in-memory API server (the party's "cluster"),
//! its VCP identity (issued by the [`SimulationCa`] and stored in the
//! identity Secret the operator reads, as `spalding operator` reads
//! `--identity-secret`), its partner-info port, and two things that are
//! stopped and started independently of each other:
//!
//! - the **operator**: [`crate::operator::run_with`], the very code
//!   `spalding operator` runs (controller, partner-info HTTPS server, probe
//!   server), on a listener bound here so its endpoint stays the same across
//!   restarts;
//! - the [`SimulationDriver`], standing in for the cluster's own workloads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use spalding_core::certificate::Fingerprint;
use spalding_core::document::PartnerDocument;
use spalding_core::name::PartyName;
use spalding_core::ports::{PartnerTransport, TransportError};
use spalding_core::render::RenderSettings;
use spalding_core::spec::Endpoint;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ca::SimulationCa;
use super::driver::SimulationDriver;
use super::{Error, Print};
use crate::apiserver::faults::{FaultPlan, Outage, OutageTransport};
use crate::apiserver::{ApiServer, Config, simulation_crds};
use crate::controller::Settings;
use crate::identity::VcpIdentity;
use crate::operator::identity::secret as identity_secret;
use crate::operator::{
    Embedding, IdentitySource, LauncherSource, Listeners, OperatorConfig, PartnerInfoTls,
    TransportWrapper, run_with,
};
use crate::transport::TransportOptions;

/// The name of every party's identity Secret (in the VC's namespace).
pub const IDENTITY_SECRET: &str = "spalding-identity";

/// How long a stopping operator or driver may take before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The partner-info listener's backlog (tokio's default for `bind`).
const LISTEN_BACKLOG: u32 = 1024;

/// How long a restarting operator retries binding its old port, which it
/// released when it stopped (should another socket take it meanwhile, the
/// start fails saying so).
const REBIND_ATTEMPTS: u32 = 40;
const REBIND_PAUSE: Duration = Duration::from_millis(50);

/// What every party of one simulation shares.
pub struct Common {
    /// Issues identities; its certificate is every transport's extra root.
    pub ca: SimulationCa,
    /// Namespace of the VirtualCloud (and of the identity Secret).
    pub namespace: String,
    /// The VirtualCloud's name.
    pub vc: String,
    /// Partner refresh interval of the operators.
    pub refresh_interval: Duration,
    /// Where progress goes.
    pub print: Print,
    /// The operators' forming interval ([`Settings::forming_interval`]).
    pub forming_interval: Duration,
    /// The operators' debounce ([`Settings::debounce`]).
    pub debounce: Duration,
    /// Faults every API server injects (seeded with the plan's seed plus
    /// the party's index).
    pub faults: FaultPlan,
    /// Partner endpoints every operator's transport cannot reach for a
    /// while (the window counts from the operator's start).
    pub outage: Option<Outage>,
}

/// A socket bound to a free loopback port, not listening yet.
fn reserve() -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(socket)
}

/// A new identity for `party` from the simulation CA, for its loopback endpoint.
fn issue(common: &Common, party: &PartyName) -> Result<VcpIdentity, String> {
    let hosts = ["127.0.0.1".to_owned(), "localhost".to_owned()];
    common
        .ca
        .issue(party.as_str(), &hosts)
        .map_err(|e| format!("issue the VCP identity: {e}"))
}

/// Resolves when a [`Task`] is told to stop.
type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A spawned task that stops when told to, or is aborted when dropped.
struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    /// Spawns what `make` builds from the future that resolves on [`Task::stop`].
    fn spawn<F>(make: impl FnOnce(StopSignal) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = watch::channel(false);
        let signal = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        Self {
            stop,
            handle: tokio::spawn(make(signal)),
        }
    }

    /// Tells the task to stop and waits for it, aborting it after [`STOP_GRACE`].
    async fn stop(mut self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(STOP_GRACE, &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
            let _ = (&mut self.handle).await;
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.handle.abort();
    }
}

/// A simulated party.
pub struct Party {
    /// `party-<i>`.
    pub name: PartyName,
    /// Its partner-info endpoint, `https://127.0.0.1:<port>`.
    pub endpoint: Endpoint,
    /// Its current identity's fingerprint, as operators admit it.
    pub fingerprint: Fingerprint,
    /// Its API server.
    pub server: ApiServer,
    /// A client of its API server for the simulation itself (set-up, hooks,
    /// driver, monitor): never faulted. The operator gets a client of its
    /// own, which meets [`Options::faults`](super::Options::faults).
    pub client: Client,
    address: SocketAddr,
    /// Bound (not listening: connections are refused) at set-up, so the
    /// port stays reserved; the first operator start listens on it.
    reserved: Option<TcpSocket>,
    /// Writes the simulation itself sent to its API server (the identity
    /// Secret, the VirtualCloud, admissions, the driver's patches), not the
    /// operator's.
    pub harness_writes: Arc<AtomicU64>,
    /// Partner documents its operator fetched.
    pub fetches: Arc<AtomicU64>,
    operator: Option<Task>,
    driver: Option<Task>,
}

/// Counts the partner documents an operator fetches (reported at rest).
struct CountedFetches {
    inner: Arc<dyn PartnerTransport>,
    fetches: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl PartnerTransport for CountedFetches {
    async fn fetch(
        &self,
        vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, TransportError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.inner.fetch(vc, endpoint).await
    }
}

impl Party {
    /// Sets party `index` up: binds its partner-info port, starts its API
    /// server, issues its identity and stores it in the identity Secret.
    /// Neither the operator nor the driver runs yet.
    pub async fn new(index: usize, common: &Common) -> Result<Self, Error> {
        let raw = format!("party-{index}");
        let setup = |what: String| Error::Setup {
            party: raw.clone(),
            what,
        };
        let name = PartyName::new(&raw).map_err(|e| setup(format!("party name: {e}")))?;
        let reserved = reserve().map_err(|e| setup(format!("bind the partner-info port: {e}")))?;
        let address = reserved
            .local_addr()
            .map_err(|e| setup(format!("partner-info address: {e}")))?;
        let endpoint = Endpoint::new(&format!("https://{address}"))
            .map_err(|e| setup(format!("endpoint: {e}")))?;
        let crds = simulation_crds().map_err(|e| setup(format!("CRDs: {e}")))?;
        let config = Config {
            faults: FaultPlan {
                seed: common.faults.seed.wrapping_add(index as u64),
                ..common.faults.clone()
            },
            ..Config::default()
        };
        let server = ApiServer::start_with(config, crds)
            .await
            .map_err(|e| setup(format!("start the API server: {e}")))?;
        let client = server
            .unfaulted_client()
            .map_err(|e| setup(format!("API server client: {e}")))?;
        let identity = issue(common, &name).map_err(setup)?;
        let party = Self {
            name,
            endpoint,
            fingerprint: identity.fingerprint().clone(),
            server,
            client,
            address,
            reserved: Some(reserved),
            harness_writes: Arc::default(),
            fetches: Arc::default(),
            operator: None,
            driver: None,
        };
        party.write_identity(common, &identity).await?;
        Ok(party)
    }

    fn error(&self, what: String) -> Error {
        Error::Setup {
            party: self.name.as_str().to_owned(),
            what,
        }
    }

    /// Issues a new identity and writes it to the identity Secret (created
    /// or replaced); the operator reads it when it next starts.
    pub(super) async fn store_new_identity(&mut self, common: &Common) -> Result<(), Error> {
        let identity = issue(common, &self.name).map_err(|what| self.error(what))?;
        self.write_identity(common, &identity).await?;
        self.fingerprint = identity.fingerprint().clone();
        Ok(())
    }

    /// Creates or replaces the identity Secret with `identity`.
    async fn write_identity(&self, common: &Common, identity: &VcpIdentity) -> Result<(), Error> {
        let mut secret = identity_secret(&common.namespace, IDENTITY_SECRET, identity);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &common.namespace);
        // The request carries the private key: report only the status code.
        let failed = |e: kube::Error| match e {
            kube::Error::Api(status) => self.error(format!(
                "store the identity Secret: API server answered {} {}",
                status.code, status.reason
            )),
            _ => self.error("store the identity Secret: the request failed".to_owned()),
        };
        let existing = api
            .get_metadata_opt(IDENTITY_SECRET)
            .await
            .map_err(failed)?;
        match existing {
            Some(current) => {
                secret.metadata.resource_version = current.metadata.resource_version;
                self.harness_writes.fetch_add(1, Ordering::Relaxed);
                api.replace(IDENTITY_SECRET, &PostParams::default(), &secret)
                    .await
                    .map_err(failed)?;
            }
            None => {
                self.harness_writes.fetch_add(1, Ordering::Relaxed);
                api.create(&PostParams::default(), &secret)
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(())
    }

    /// Whether its operator runs.
    pub fn operator_running(&self) -> bool {
        self.operator.is_some()
    }

    /// Whether its simulation driver runs.
    pub fn driver_running(&self) -> bool {
        self.driver.is_some()
    }

    /// Starts the operator (a no-op when it runs) on the party's partner-info port.
    pub(super) async fn start_operator(&mut self, common: &Common) -> Result<(), Error> {
        if self.operator.is_some() {
            return Ok(());
        }
        let partner_info = match self.reserved.take() {
            Some(socket) => socket
                .listen(LISTEN_BACKLOG)
                .map_err(|e| self.error(format!("listen on {}: {e}", self.address)))?,
            None => self.rebind().await?,
        };
        let health = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| self.error(format!("bind the probe port: {e}")))?;
        let health_address = health
            .local_addr()
            .map_err(|e| self.error(format!("probe address: {e}")))?;
        let config = OperatorConfig {
            party: self.name.clone(),
            endpoint: self.endpoint.clone(),
            namespace: Some(common.namespace.clone()),
            identity: IdentitySource::Secret {
                namespace: Some(common.namespace.clone()),
                name: IDENTITY_SECRET.to_owned(),
            },
            partner_info_address: self.address,
            partner_info_tls: PartnerInfoTls::VcpCertificate,
            health_address,
            refresh_interval: common.refresh_interval,
            forming_interval: common.forming_interval,
            debounce: common.debounce,
            transport: TransportOptions {
                connect_timeout: Duration::from_secs(2),
                total_timeout: Duration::from_secs(5),
                extra_ca_pem: Some(common.ca.certificate_pem().as_bytes().to_vec()),
                allow_private_addresses: true,
                ..TransportOptions::default()
            },
            instance: Some(self.name.as_str().to_owned()),
            metrics_address: None,
            leader_election: None,
        };
        let embedding = Embedding {
            listeners: Some(Listeners {
                partner_info,
                health,
            }),
            settings: Some(Settings {
                refresh_interval: common.refresh_interval,
                forming_interval: common.forming_interval,
                debounce: common.debounce,
                min_backoff: Duration::from_millis(250),
                max_backoff: common.refresh_interval.max(Duration::from_secs(2)),
            }),
            wrap_transport: Some(self.wrap_transport(common)),
        };
        let launcher = LauncherSource::Kube {
            render: RenderSettings::default(),
            settings: Box::default(),
        };
        let client = self
            .server
            .client()
            .map_err(|e| self.error(format!("API server client: {e}")))?;
        let print = common.print.clone();
        let party = self.name.as_str().to_owned();
        self.operator = Some(Task::spawn(move |stop| async move {
            if let Err(error) = run_with(config, client, launcher, embedding, stop).await {
                print(&format!("{party}: operator failed: {error}"));
            }
        }));
        Ok(())
    }

    /// Counts the operator's fetches and injects the simulation's outage.
    fn wrap_transport(&self, common: &Common) -> TransportWrapper {
        let fetches = Arc::clone(&self.fetches);
        let outage = common.outage.clone();
        Box::new(move |inner| {
            let counted: Arc<dyn PartnerTransport> = Arc::new(CountedFetches { inner, fetches });
            match outage {
                Some(outage) => Arc::new(OutageTransport::new(counted, outage)),
                None => counted,
            }
        })
    }

    /// Binds the partner-info port again after the operator released it.
    async fn rebind(&self) -> Result<TcpListener, Error> {
        let mut attempt = 0;
        loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => return Ok(listener),
                Err(error) if attempt + 1 >= REBIND_ATTEMPTS => {
                    return Err(self.error(format!("bind {} again: {error}", self.address)));
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(REBIND_PAUSE).await;
                }
            }
        }
    }

    /// Stops the operator and waits until it has (a no-op when it is stopped).
    pub(super) async fn stop_operator(&mut self) {
        if let Some(task) = self.operator.take() {
            task.stop().await;
        }
    }

    /// Starts the simulation driver (a no-op when it runs).
    pub(super) fn start_driver(&mut self, common: &Common) {
        if self.driver.is_some() {
            return;
        }
        let driver = SimulationDriver::counting(
            self.client.clone(),
            &common.namespace,
            &common.vc,
            self.name.as_str(),
            common.print.clone(),
            Arc::clone(&self.harness_writes),
        );
        self.driver = Some(Task::spawn(move |stop| driver.run(stop)));
    }

    /// Stops the simulation driver (a no-op when it is stopped).
    pub(super) async fn stop_driver(&mut self) {
        if let Some(task) = self.driver.take() {
            task.stop().await;
        }
    }

    /// Stops everything and the API server.
    pub(super) async fn shut_down(&mut self) {
        self.stop_operator().await;
        self.stop_driver().await;
        self.server.shutdown();
    }
}

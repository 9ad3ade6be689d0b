//! One simulated party: an in-memory API server, a generated VCP identity,
//! the real partner-info HTTPS server on a loopback port serving what the
//! controller publishes, the real controller, and the simulation driver.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Reporter;
use spalding_core::machine::LocalIdentity;
use spalding_core::name::PartyName;
use spalding_core::spec::Endpoint;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::driver::SimulationDriver;
use super::source::ConfigMapDocuments;
use super::{Error, Print, Shutdown};
use crate::apiserver::{ApiServer, simulation_crds};
use crate::cluster::KubeCluster;
use crate::controller::{self, Context, Settings};
use crate::entropy::OsEntropy;
use crate::identity::VcpIdentity;
use crate::launcher::{KubeLauncher, LauncherSettings};
use crate::server::{PartnerInfoServer, server_tls_config};
use crate::signing::VcpSigner;
use crate::transport::{HttpsTransport, TransportOptions};

/// A party before it runs: its name, listener and identity.
pub struct Prepared {
    /// `party-<i>`.
    pub name: PartyName,
    /// The partner-info server's listener on 127.0.0.1.
    pub listener: TcpListener,
    /// `https://127.0.0.1:<port>`.
    pub endpoint: Endpoint,
    /// The generated VCP identity (SANs 127.0.0.1 and localhost).
    pub identity: VcpIdentity,
}

impl Prepared {
    /// Binds a loopback port and generates the identity of party `index`.
    pub async fn new(index: usize) -> Result<Self, Error> {
        let raw = format!("party-{index}");
        let name = PartyName::new(&raw).map_err(|e| Error::Setup {
            party: raw.clone(),
            what: format!("party name: {e}"),
        })?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::Setup {
                party: raw.clone(),
                what: format!("bind the partner-info server: {e}"),
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Setup {
                party: raw.clone(),
                what: format!("partner-info server address: {e}"),
            })?
            .port();
        let endpoint =
            Endpoint::new(&format!("https://127.0.0.1:{port}")).map_err(|e| Error::Setup {
                party: raw.clone(),
                what: format!("endpoint: {e}"),
            })?;
        let identity =
            VcpIdentity::generate(&raw, &["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(|e| Error::Setup {
                    party: raw.clone(),
                    what: format!("generate the VCP identity: {e}"),
                })?;
        Ok(Self {
            name,
            listener,
            endpoint,
            identity,
        })
    }
}

/// A running party.
pub struct Party {
    /// `party-<i>`.
    pub name: String,
    /// Its partner-info endpoint.
    pub endpoint: Endpoint,
    /// Its identity's fingerprint, as operators admit it.
    pub fingerprint: String,
    /// Its API server.
    pub server: ApiServer,
    /// A client of its API server.
    pub client: Client,
    /// Writes the simulation itself sent to its API server (the
    /// VirtualCloud, admissions, the driver's patches), not the controller's.
    pub harness_writes: Arc<AtomicU64>,
    /// Documents its partner-info server served.
    pub documents_served: Arc<AtomicU64>,
}

/// What every party is started with.
pub struct Common<'a> {
    /// PEM of every party's certificate: the roots every transport trusts.
    pub trusted_pem: &'a [u8],
    /// Namespace of the VirtualCloud.
    pub namespace: &'a str,
    /// The VirtualCloud's name.
    pub vc: &'a str,
    /// Partner refresh interval of the controllers.
    pub refresh_interval: Duration,
    /// The controllers' forming interval ([`Settings::forming_interval`]).
    pub forming_interval: Duration,
    /// The controllers' debounce ([`Settings::debounce`]).
    pub debounce: Duration,
    /// Where progress goes.
    pub print: &'a Print,
    /// Resolves when everything should stop.
    pub shutdown: &'a Shutdown,
}

impl Party {
    /// Starts `prepared` with its tasks in `tasks`.
    pub async fn start(
        prepared: Prepared,
        common: &Common<'_>,
        tasks: &mut JoinSet<()>,
    ) -> Result<Self, Error> {
        let Prepared {
            name,
            listener,
            endpoint,
            identity,
        } = prepared;
        let party = name.as_str().to_owned();
        let setup = |what: String| Error::Setup {
            party: party.clone(),
            what,
        };
        let crds = simulation_crds().map_err(|e| setup(format!("CRDs: {e}")))?;
        let server = ApiServer::start(crds)
            .await
            .map_err(|e| setup(format!("start the API server: {e}")))?;
        let client = server
            .client()
            .map_err(|e| setup(format!("API server client: {e}")))?;

        let render = spalding_core::render::RenderSettings::default();
        let cluster = KubeCluster::new(
            client.clone(),
            Reporter {
                controller: "spalding".to_owned(),
                instance: Some(party.clone()),
            },
            Arc::new(VcpSigner::new(&identity)),
        )
        .with_lifecycle(render.clone(), &identity);
        let transport = HttpsTransport::new(TransportOptions {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            extra_ca_pem: Some(common.trusted_pem.to_vec()),
            allow_private_addresses: true,
            ..TransportOptions::default()
        })
        .map_err(|e| setup(format!("HTTPS transport: {e}")))?;
        let launcher = KubeLauncher::new(client.clone(), render, LauncherSettings::default());
        let local = LocalIdentity {
            name: name.clone(),
            endpoint: endpoint.clone(),
            certificate: identity.certificate().clone(),
        };
        let settings = Settings {
            refresh_interval: common.refresh_interval,
            forming_interval: common.forming_interval,
            debounce: common.debounce,
            min_backoff: Duration::from_millis(250),
            max_backoff: common.refresh_interval.max(Duration::from_secs(2)),
        };
        let ctx = Arc::new(Context::new(
            local,
            Arc::new(cluster),
            Arc::new(transport),
            Arc::new(launcher),
            Arc::new(OsEntropy),
            settings,
        ));
        tasks.spawn(controller::run_until(
            client.clone(),
            ctx,
            None,
            common.shutdown.wait(),
        ));

        let (documents, cache) =
            ConfigMapDocuments::new(client.clone(), common.namespace, common.shutdown.wait());
        let documents_served = documents.served();
        tasks.spawn(cache);
        let tls = server_tls_config(&identity).map_err(|e| setup(format!("TLS: {e}")))?;
        let serving = PartnerInfoServer::new(Arc::new(documents)).serve_tls(
            listener,
            tls,
            common.shutdown.wait(),
        );
        let who = party.clone();
        tasks.spawn(async move {
            if let Err(error) = serving.await {
                tracing::warn!(party = %who, %error, "partner-info server stopped");
            }
        });

        let harness_writes = Arc::new(AtomicU64::new(0));
        let driver = SimulationDriver::counting(
            client.clone(),
            common.namespace,
            common.vc,
            &party,
            common.print.clone(),
            harness_writes.clone(),
        );
        tasks.spawn(driver.run(common.shutdown.wait()));

        Ok(Self {
            fingerprint: identity.fingerprint().to_string(),
            name: party,
            endpoint,
            server,
            client,
            harness_writes,
            documents_served,
        })
    }
}

//! `spalding simulate`: N complete parties in one process forming one
//! Virtual Cloud, with the same operator code that runs in a cluster.
//!
//! Per party ([`party`]): an in-memory [`crate::apiserver`], a generated VCP
//! identity (SANs `127.0.0.1` and `localhost`), the real partner-info HTTPS
//! server on a loopback port serving the signed documents read from that
//! party's API server ([`source`]), the real [`crate::controller`] with
//! [`crate::cluster::KubeCluster`], [`crate::transport::HttpsTransport`]
//! (trusting every party's certificate), [`crate::launcher::KubeLauncher`]
//! and the operating system's entropy, and the [`driver::SimulationDriver`],
//! which stands in for MP-SPDZ and the foundation services: it completes
//! key generation Jobs and marks services ready. Each party's namespace gets
//! a `VirtualCloud` naming all others with the Carbyne Stack default
//! parameters. With `auto_admit` the monitor creates a
//! `VirtualCloudPartnerAdmission` pinned to each partner's fingerprint as
//! soon as its partner record shows one; otherwise it prints the kubectl
//! commands that do so and waits.
//!
//! [`run`] prints one line per state change per party and returns a
//! [`Report`] when every VC is `ready` (after lingering at rest for
//! [`Options::linger`], counting writes and partner fetches) or at the
//! timeout.

pub mod driver;
pub mod party;
pub mod report;
pub mod source;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use spalding_core::configuration::MAC_KEY_SECRET;
use spalding_core::parameters::Parameters;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::party::{Common, Party, Prepared};
pub use self::report::{Counts, PartyReport, Report};
use crate::crd::{
    MpcParameters, VirtualCloud, VirtualCloudPartner, VirtualCloudPartnerAdmission,
    VirtualCloudPartnerAdmissionSpec, VirtualCloudPartnerEntry, VirtualCloudSpec,
    VirtualCloudState,
};

/// Where progress lines go.
pub type Print = Arc<dyn Fn(&str) + Send + Sync>;

/// How often the monitor looks at every party.
const MONITOR_INTERVAL: Duration = Duration::from_millis(50);

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of parties (at least 2).
    pub parties: usize,
    /// Admit every partner automatically, pinned to its fingerprint.
    pub auto_admit: bool,
    /// Write every object of every API server here, one folder per party.
    pub emit: Option<PathBuf>,
    /// Give up after this long.
    pub timeout: Duration,
    /// The VirtualCloud's name.
    pub virtual_cloud: String,
    /// The namespace of the VirtualCloud in every party's API server.
    pub namespace: String,
    /// The controllers' partner refresh interval (a ready VC at rest).
    pub refresh_interval: Duration,
    /// The controllers' forming interval: how soon a VC that is not ready,
    /// or whose last reconcile acted, is reconciled again.
    pub forming_interval: Duration,
    /// The controllers' debounce after watch events.
    pub debounce: Duration,
    /// How long to stay at rest once every party is ready, counting the
    /// writes and partner fetches meanwhile.
    pub linger: Duration,
    /// Parameters of single parties (by index) instead of the Carbyne Stack defaults.
    pub parameters: BTreeMap<usize, Parameters>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            parties: 3,
            auto_admit: false,
            emit: None,
            timeout: Duration::from_secs(120),
            virtual_cloud: "demo".to_owned(),
            namespace: "default".to_owned(),
            refresh_interval: Duration::from_secs(1),
            forming_interval: Duration::from_millis(100),
            debounce: Duration::from_millis(20),
            linger: Duration::ZERO,
            parameters: BTreeMap::new(),
        }
    }
}

/// Why a simulation could not run (reaching the timeout is not an error:
/// see [`Report::ready`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fewer than two parties asked for.
    #[error("a Virtual Cloud needs at least 2 parties, not {0}")]
    TooFewParties(usize),
    /// Setting a party up failed.
    #[error("{party}: {what}")]
    Setup {
        /// The party.
        party: String,
        /// What failed.
        what: String,
    },
    /// Writing files (kubeconfigs, `--emit`) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Tells every task to stop.
pub struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    fn new() -> Self {
        Self(watch::channel(false).0)
    }

    /// Resolves once [`Shutdown::trigger`] was called.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut receiver = self.0.subscribe();
        let waiting = tokio::spawn(async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        });
        async move {
            let _ = waiting.await;
        }
    }

    /// Stops everything waiting.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// What the monitor tracks of one party.
#[derive(Default)]
struct Watched {
    state: Option<VirtualCloudState>,
    ready_after: Option<Duration>,
    admitted: HashSet<String>,
    secret_versions: HashSet<String>,
    blocking: Vec<String>,
    /// Counters when every party was ready.
    at_ready: Option<Counts>,
    /// Counters when the time at rest began (after settling).
    rest_start: Option<Counts>,
    /// Counters after lingering at rest.
    at_rest: Option<Counts>,
}

/// Runs a simulation, printing progress through `print`.
pub async fn run(options: Options, print: Print) -> Result<Report, Error> {
    if options.parties < 2 {
        return Err(Error::TooFewParties(options.parties));
    }
    let started = Instant::now();
    let mut prepared = Vec::with_capacity(options.parties);
    for index in 0..options.parties {
        prepared.push(Prepared::new(index).await?);
    }
    let trusted_pem: Vec<u8> = prepared
        .iter()
        .flat_map(|p| p.identity.pems().tls_crt.into_bytes())
        .collect();
    let entries: Vec<VirtualCloudPartnerEntry> = prepared
        .iter()
        .map(|p| VirtualCloudPartnerEntry {
            name: p.name.as_str().to_owned(),
            endpoint: p.endpoint.as_str().to_owned(),
        })
        .collect();

    let shutdown = Shutdown::new();
    let mut tasks = JoinSet::new();
    let common = Common {
        trusted_pem: &trusted_pem,
        namespace: &options.namespace,
        vc: &options.virtual_cloud,
        refresh_interval: options.refresh_interval,
        forming_interval: options.forming_interval,
        debounce: options.debounce,
        print: &print,
        shutdown: &shutdown,
    };
    let mut parties = Vec::with_capacity(options.parties);
    for p in prepared {
        parties.push(Party::start(p, &common, &mut tasks).await?);
    }
    for party in &parties {
        print(&format!(
            "{}: partner-info {} · API server {} · fingerprint {}",
            party.name,
            party.endpoint.as_str(),
            party.server.url(),
            party.fingerprint
        ));
    }
    print(
        "simulation driver: key generation Jobs and foundation service readiness are simulated; \
         MP-SPDZ and Istio do not run",
    );
    let kubeconfigs = report::write_kubeconfigs(&parties)?;
    if !options.auto_admit {
        print(&report::admission_commands(
            &parties,
            &kubeconfigs,
            &options.virtual_cloud,
        ));
    }

    let outcome = async {
        let setup = started.elapsed();
        print(&format!(
            "set up in {:.1} s; creating the VirtualClouds",
            setup.as_secs_f64()
        ));
        let created = Instant::now();
        create_virtual_clouds(&parties, &entries, &options).await?;
        let mut watched = monitor(&parties, &options, &print, created).await;
        if watched
            .iter()
            .all(|w| w.state == Some(VirtualCloudState::Ready))
        {
            for (party, seen) in parties.iter().zip(watched.iter_mut()) {
                seen.at_ready = Some(counts(party));
            }
            if !options.linger.is_zero() {
                // Settle first: a party that got ready before its partners
                // records their last documents at its next refresh.
                let settle = options.refresh_interval.saturating_mul(2);
                print(&format!(
                    "every party is ready; settling for {:.1} s, then at rest for {:.0} s",
                    settle.as_secs_f64(),
                    options.linger.as_secs_f64()
                ));
                tokio::time::sleep(settle).await;
                for (party, seen) in parties.iter().zip(watched.iter_mut()) {
                    seen.rest_start = Some(counts(party));
                }
                tokio::time::sleep(options.linger).await;
                for (party, seen) in parties.iter().zip(watched.iter_mut()) {
                    seen.at_rest = Some(counts(party));
                }
            }
        }
        Ok::<_, Error>(watched)
    }
    .await;

    let emitted = match (&options.emit, &outcome) {
        (Some(dir), Ok(_)) => report::emit(dir, &parties).map(Some),
        _ => Ok(None),
    };
    shutdown.trigger();
    for party in &parties {
        party.server.shutdown();
    }
    if tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    let _ = std::fs::remove_dir_all(&kubeconfigs.dir);
    let watched = outcome?;
    if let Some(dir) = emitted? {
        print(&format!("wrote every object to {}", dir.display()));
    }
    Ok(Report::new(&parties, watched, started.elapsed(), &options))
}

/// The party's counters now.
fn counts(party: &Party) -> Counts {
    Counts {
        writes: party.server.writes(),
        harness_writes: party.harness_writes.load(Ordering::Relaxed),
        documents_served: party.documents_served.load(Ordering::Relaxed),
    }
}

async fn create_virtual_clouds(
    parties: &[Party],
    entries: &[VirtualCloudPartnerEntry],
    options: &Options,
) -> Result<(), Error> {
    for (index, party) in parties.iter().enumerate() {
        let parameters = options
            .parameters
            .get(&index)
            .cloned()
            .unwrap_or_else(Parameters::carbyne_stack_default);
        let partners = entries
            .iter()
            .filter(|e| e.name != party.name)
            .cloned()
            .collect();
        let mut vc = VirtualCloud::new(
            &options.virtual_cloud,
            VirtualCloudSpec {
                parameters: MpcParameters::from(parameters),
                partners,
            },
        );
        vc.metadata.namespace = Some(options.namespace.clone());
        party.harness_writes.fetch_add(1, Ordering::Relaxed);
        Api::<VirtualCloud>::namespaced(party.client.clone(), &options.namespace)
            .create(&PostParams::default(), &vc)
            .await
            .map_err(|e| Error::Setup {
                party: party.name.clone(),
                what: format!("create the VirtualCloud: {e}"),
            })?;
    }
    Ok(())
}

/// Watches every party until all are ready or the timeout passes.
async fn monitor(
    parties: &[Party],
    options: &Options,
    print: &Print,
    started: Instant,
) -> Vec<Watched> {
    let mut watched: Vec<Watched> = parties.iter().map(|_| Watched::default()).collect();
    let deadline = started + options.timeout;
    loop {
        for (party, seen) in parties.iter().zip(watched.iter_mut()) {
            if let Err(error) = observe(party, seen, options, print, started).await {
                tracing::debug!(party = %party.name, %error, "monitor");
            }
        }
        if watched
            .iter()
            .all(|w| w.state == Some(VirtualCloudState::Ready))
            || Instant::now() >= deadline
        {
            return watched;
        }
        tokio::time::sleep(MONITOR_INTERVAL).await;
    }
}

/// One look at one party: state changes, admissions, the MAC key Secret.
async fn observe(
    party: &Party,
    seen: &mut Watched,
    options: &Options,
    print: &Print,
    started: Instant,
) -> Result<(), kube::Error> {
    let ns = &options.namespace;
    let vcs: Api<VirtualCloud> = Api::namespaced(party.client.clone(), ns);
    let vc = vcs.get(&options.virtual_cloud).await?;
    let status = vc.status.unwrap_or_default();
    let state = status.state;
    if seen.state != Some(state) {
        let from = seen.state.map_or("created".to_owned(), report::state_name);
        print(&format!(
            "{}: {from} → {}",
            party.name,
            report::state_name(state)
        ));
        seen.state = Some(state);
        if state == VirtualCloudState::Ready {
            seen.ready_after = Some(started.elapsed());
        }
    }
    seen.blocking = status
        .conditions
        .iter()
        .filter(|c| c.status != crate::crd::ConditionState::True)
        .map(|c| format!("{}={:?} ({}): {}", c.type_, c.status, c.reason, c.message))
        .collect();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(party.client.clone(), ns);
    if let Some(secret) = secrets.get_metadata_opt(MAC_KEY_SECRET).await?
        && let Some(version) = secret.resource_version()
    {
        seen.secret_versions.insert(version);
    }
    if options.auto_admit {
        admit_partners(party, seen, ns, print).await?;
    }
    Ok(())
}

/// Admits every partner whose record shows a fingerprint, pinned to it.
async fn admit_partners(
    party: &Party,
    seen: &mut Watched,
    ns: &str,
    print: &Print,
) -> Result<(), kube::Error> {
    let records: Api<VirtualCloudPartner> = Api::namespaced(party.client.clone(), ns);
    let admissions: Api<VirtualCloudPartnerAdmission> = Api::namespaced(party.client.clone(), ns);
    for record in records.list(&ListParams::default()).await? {
        let name = record.name_any();
        let Some(fingerprint) = record.status.as_ref().and_then(|s| s.fingerprint.clone()) else {
            continue;
        };
        if seen.admitted.contains(&name) {
            continue;
        }
        let admission = VirtualCloudPartnerAdmission::new(
            &name,
            VirtualCloudPartnerAdmissionSpec {
                partner: name.clone(),
                fingerprint: Some(fingerprint.clone()),
            },
        );
        party.harness_writes.fetch_add(1, Ordering::Relaxed);
        match admissions.create(&PostParams::default(), &admission).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        print(&format!(
            "{}: admitted {} ({fingerprint})",
            party.name, record.spec.name
        ));
        seen.admitted.insert(name);
    }
    Ok(())
}

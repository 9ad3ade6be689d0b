//! `spalding simulate`: N complete parties in one process forming one
//! Virtual Cloud, with the same operator code that runs in a cluster.
//!
//! Per party ([`party`]): an in-memory [`crate::apiserver`], a VCP identity
//! issued by the [`ca::SimulationCa`] (SANs `127.0.0.1` and `localhost`)
//! and stored in the party's identity Secret, the operator exactly as
//! `spalding operator` runs it ([`crate::operator::run_with`]: the
//! controller, the partner-info HTTPS server on a loopback port, the probe
//! server) with a transport trusting the simulation CA, and the
//! [`driver::SimulationDriver`], which stands in for MP-SPDZ and the
//! foundation services: it completes key generation Jobs and marks services
//! ready. Each party's namespace gets a `VirtualCloud` naming all others,
//! with the Carbyne Stack default parameters unless [`Options::parameters`]
//! says otherwise. With `auto_admit` the monitor ([`monitor`]) creates a
//! `VirtualCloudPartnerAdmission` pinned to each partner's fingerprint as
//! soon as its partner record shows one; otherwise it prints the
//! `spalding admit` commands that do so and waits.
//!
//! [`run`] is what `spalding simulate` calls: it prints one line per state
//! change per party and returns a [`Report`] when every VC is `ready` or at
//! the timeout. Tests drive a [`Simulation`] step by step instead, through
//! its hooks: start a party's operator late ([`Options::late_operators`]),
//! stop and restart one party's operator or driver, complete key generation
//! by hand, replace a party's identity, admit a partner again, and wait for
//! (or insist on) a condition of every party's status for a bounded time.
//! With [`Options::linger`], [`run`] stays at rest once every party is
//! ready and reports the writes and partner fetches meanwhile.

pub mod ca;
pub mod driver;
pub mod monitor;
mod options;
pub mod party;
pub mod report;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use spalding_core::certificate::Fingerprint;
use spalding_core::parameters::Parameters;
use spalding_core::partner::partner_object_name;
use tokio::time::Instant;

use self::ca::SimulationCa;
pub use self::monitor::PartyStatus;
pub use self::options::Options;
use self::party::{Common, Party};
pub use self::report::{AtRest, Counts, PartyReport, Report};
use crate::apiserver::faults::Outage;
use crate::crd::{MpcParameters, VirtualCloud, VirtualCloudPartnerEntry, VirtualCloudSpec};

/// Where progress lines go.
pub type Print = Arc<dyn Fn(&str) + Send + Sync>;

/// How often the monitor looks at every party.
const MONITOR_INTERVAL: Duration = Duration::from_millis(50);

/// Why a simulation could not run or a hook failed (reaching [`run`]'s
/// timeout is not an error: see [`Report::ready`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fewer than two parties asked for.
    #[error("a Virtual Cloud needs at least 2 parties, not {0}")]
    TooFewParties(usize),
    /// An index names no party.
    #[error("there is no party {index} (of {parties})")]
    NoSuchParty {
        /// The index given.
        index: usize,
        /// How many parties there are.
        parties: usize,
    },
    /// Setting a party up, or changing it, failed.
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
    /// [`Simulation::wait_for`] ran out of time.
    #[error("still waiting for {waiting_for} after {after:?}:\n{parties}")]
    Timeout {
        /// What was waited for.
        waiting_for: String,
        /// How long.
        after: Duration,
        /// Every party's state and blocking conditions.
        parties: String,
    },
    /// [`Simulation::expect_for`] saw its invariant broken.
    #[error("no longer {expected} after {after:?}:\n{parties}")]
    Broken {
        /// The invariant.
        expected: String,
        /// When it broke.
        after: Duration,
        /// Every party's state and blocking conditions.
        parties: String,
    },
}

/// A running simulation; see the module documentation.
pub struct Simulation {
    options: Options,
    common: Common,
    started: Instant,
    /// When the VirtualClouds were created: times to `ready` count from here.
    created: Instant,
    /// Every party's counters when all were first seen ready.
    at_ready: Option<Vec<Counts>>,
    /// What every party did at rest, when [`Simulation::linger`] ran.
    at_rest: Option<Vec<AtRest>>,
    parties: Vec<Party>,
    statuses: Vec<PartyStatus>,
    kubeconfigs: report::Kubeconfigs,
}

impl Simulation {
    /// Sets every party up, creates the VirtualClouds and starts every
    /// driver and every operator not in [`Options::late_operators`].
    pub async fn start(options: Options, print: Print) -> Result<Self, Error> {
        if options.parties < 2 {
            return Err(Error::TooFewParties(options.parties));
        }
        let out_of_range = options
            .late_operators
            .iter()
            .chain(options.parameters.keys())
            .find(|&&index| index >= options.parties);
        if let Some(&index) = out_of_range {
            return Err(Error::NoSuchParty {
                index,
                parties: options.parties,
            });
        }
        let started = Instant::now();
        let ca = SimulationCa::new().map_err(|e| Error::Setup {
            party: "simulation".to_owned(),
            what: format!("simulation CA: {e}"),
        })?;
        let mut common = Common {
            ca,
            namespace: options.namespace.clone(),
            vc: options.virtual_cloud.clone(),
            refresh_interval: options.refresh_interval,
            print,
            forming_interval: options.forming_interval,
            debounce: options.debounce,
            faults: options.faults.clone(),
            outage: None,
        };
        let mut parties = Vec::with_capacity(options.parties);
        for index in 0..options.parties {
            parties.push(Party::new(index, &common).await?);
        }
        common.outage = options.outage.and_then(|(index, from, duration)| {
            Some(Outage {
                endpoints: [parties.get(index)?.endpoint.clone()].into(),
                from,
                duration,
            })
        });
        for party in &parties {
            (common.print)(&format!(
                "{}: partner-info {} · API server {} · fingerprint {}",
                party.name,
                party.endpoint.as_str(),
                party.server.url(),
                party.fingerprint
            ));
        }
        (common.print)(
            "simulation driver: key generation Jobs and foundation service readiness are simulated; \
             MP-SPDZ and Istio do not run",
        );
        let kubeconfigs = report::write_kubeconfigs(&parties, &unique_suffix())?;
        if !options.auto_admit {
            (common.print)(&report::admission_commands(
                &parties,
                &kubeconfigs,
                &options.namespace,
                &options.virtual_cloud,
            ));
        }
        let statuses = vec![PartyStatus::default(); parties.len()];
        (common.print)(&format!(
            "set up in {:.1} s; creating the VirtualClouds",
            started.elapsed().as_secs_f64()
        ));
        let mut simulation = Self {
            options,
            common,
            started,
            created: Instant::now(),
            parties,
            statuses,
            kubeconfigs,
            at_ready: None,
            at_rest: None,
        };
        simulation.create_virtual_clouds().await?;
        for index in 0..simulation.parties.len() {
            simulation.parties[index].start_driver(&simulation.common);
            if !simulation.options.late_operators.contains(&index) {
                simulation.parties[index]
                    .start_operator(&simulation.common)
                    .await?;
            }
        }
        Ok(simulation)
    }

    /// Every party, in order.
    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    /// Party `index`.
    pub fn party(&self, index: usize) -> Result<&Party, Error> {
        self.parties.get(index).ok_or(Error::NoSuchParty {
            index,
            parties: self.parties.len(),
        })
    }

    fn party_mut(&mut self, index: usize) -> Result<&mut Party, Error> {
        let parties = self.parties.len();
        self.parties
            .get_mut(index)
            .ok_or(Error::NoSuchParty { index, parties })
    }

    /// What the monitor last saw of every party, in order.
    pub fn statuses(&self) -> &[PartyStatus] {
        &self.statuses
    }

    /// Time since [`Simulation::start`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Starts party `index`'s operator (on its partner-info port, which it
    /// keeps across restarts); a no-op when it runs.
    pub async fn start_operator(&mut self, index: usize) -> Result<(), Error> {
        let party = self.parties.get_mut(index).ok_or(Error::NoSuchParty {
            index,
            parties: self.options.parties,
        })?;
        if !party.operator_running() {
            party.start_operator(&self.common).await?;
            (self.common.print)(&format!("{}: operator started", party.name));
        }
        Ok(())
    }

    /// Stops party `index`'s operator and waits until it stopped (running
    /// reconciles and requests finish); a no-op when it is stopped.
    pub async fn stop_operator(&mut self, index: usize) -> Result<(), Error> {
        let party = self.party_mut(index)?;
        if party.operator_running() {
            party.stop_operator().await;
            let line = format!("{}: operator stopped", party.name);
            (self.common.print)(&line);
        }
        Ok(())
    }

    /// Stops and starts party `index`'s operator.
    pub async fn restart_operator(&mut self, index: usize) -> Result<(), Error> {
        self.stop_operator(index).await?;
        self.start_operator(index).await
    }

    /// Starts party `index`'s simulation driver; a no-op when it runs.
    pub fn start_driver(&mut self, index: usize) -> Result<(), Error> {
        let party = self.parties.get_mut(index).ok_or(Error::NoSuchParty {
            index,
            parties: self.options.parties,
        })?;
        party.start_driver(&self.common);
        Ok(())
    }

    /// Stops party `index`'s simulation driver: its key generation Job stays
    /// running and its services unready until [`Simulation::start_driver`]
    /// (or [`Simulation::complete_key_generation`]).
    pub async fn stop_driver(&mut self, index: usize) -> Result<(), Error> {
        self.party_mut(index)?.stop_driver().await;
        Ok(())
    }

    /// Marks party `index`'s key generation Job succeeded, once, as the
    /// driver would, without readying its services.
    pub async fn complete_key_generation(&self, index: usize) -> Result<(), Error> {
        let party = self.party(index)?;
        let mut driver = driver::SimulationDriver::new(
            party.client.clone(),
            &self.common.namespace,
            &self.common.vc,
            party.name.as_str(),
            self.common.print.clone(),
        );
        driver
            .complete_key_generation()
            .await
            .map_err(|e| Error::Setup {
                party: party.name.as_str().to_owned(),
                what: format!("complete key generation: {e}"),
            })
    }

    /// Replaces party `index`'s VCP identity with a new one from the
    /// simulation CA: stops its operator (if it runs), writes the identity
    /// Secret and starts the operator again, which then publishes documents
    /// with the new certificate. Partners that admitted the old fingerprint
    /// stop progressing (`CertificateChanged`) until [`Simulation::admit`].
    /// Returns the new fingerprint.
    pub async fn rotate_identity(&mut self, index: usize) -> Result<Fingerprint, Error> {
        let was_running = self.party(index)?.operator_running();
        self.stop_operator(index).await?;
        let party = self.parties.get_mut(index).ok_or(Error::NoSuchParty {
            index,
            parties: self.options.parties,
        })?;
        party.store_new_identity(&self.common).await?;
        let fingerprint = party.fingerprint.clone();
        (self.common.print)(&format!(
            "{}: new VCP identity, fingerprint {fingerprint}",
            party.name
        ));
        if was_running {
            self.start_operator(index).await?;
        }
        Ok(fingerprint)
    }

    /// Has party `index` admit party `partner`, pinned to the partner's
    /// current fingerprint (as a person would, having learned it out of
    /// band); replaces an admission pinned to another fingerprint.
    pub async fn admit(&self, index: usize, partner: usize) -> Result<(), Error> {
        let party = self.party(index)?;
        let other = self.party(partner)?;
        let record = partner_object_name(&self.common.vc, &other.name);
        monitor::admit(party, &self.common, &record, other.fingerprint.as_str())
            .await
            .map_err(|e| Error::Setup {
                party: party.name.as_str().to_owned(),
                what: format!("admit {}: {e}", other.name),
            })?;
        (self.common.print)(&format!(
            "{}: admitted {} ({})",
            party.name, other.name, other.fingerprint
        ));
        Ok(())
    }

    /// Has every party admit every other (see [`Simulation::admit`]).
    pub async fn admit_all(&self) -> Result<(), Error> {
        for index in 0..self.parties.len() {
            for partner in (0..self.parties.len()).filter(|&p| p != index) {
                self.admit(index, partner).await?;
            }
        }
        Ok(())
    }

    /// One look at every party (see [`monitor`]); failed reads are retried
    /// at the next look.
    pub async fn observe(&mut self) {
        for (party, seen) in self.parties.iter().zip(self.statuses.iter_mut()) {
            if let Err(error) = monitor::observe(
                party,
                seen,
                &self.common,
                self.options.auto_admit,
                self.created,
            )
            .await
            {
                tracing::debug!(party = %party.name, %error, "monitor");
            }
        }
    }

    /// Looks at every party until `done` holds of their statuses, for at
    /// most `timeout`; [`Error::Timeout`] says what every party was waiting for.
    pub async fn wait_for(
        &mut self,
        waiting_for: &str,
        timeout: Duration,
        mut done: impl FnMut(&[PartyStatus]) -> bool,
    ) -> Result<(), Error> {
        match self.look(timeout, |s| done(s).then_some(())).await {
            Ok(()) => Ok(()),
            Err(after) => Err(Error::Timeout {
                waiting_for: waiting_for.to_owned(),
                after,
                parties: self.describe(),
            }),
        }
    }

    /// Waits until every VC is `ready`, for at most `timeout`.
    pub async fn wait_until_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        self.wait_for("every party to be ready", timeout, |s| {
            s.iter().all(PartyStatus::is_ready)
        })
        .await
    }

    /// Looks at every party for `duration` and fails as soon as `holds` does
    /// not hold of their statuses.
    pub async fn expect_for(
        &mut self,
        expected: &str,
        duration: Duration,
        mut holds: impl FnMut(&[PartyStatus]) -> bool,
    ) -> Result<(), Error> {
        let since = Instant::now();
        match self.look(duration, |s| (!holds(s)).then_some(())).await {
            Err(_) => Ok(()),
            Ok(()) => Err(Error::Broken {
                expected: expected.to_owned(),
                after: since.elapsed(),
                parties: self.describe(),
            }),
        }
    }

    /// Observes every party each [`MONITOR_INTERVAL`] until `found` finds
    /// something in their statuses; `Err` with the time spent when
    /// `duration` passes first.
    async fn look<T>(
        &mut self,
        duration: Duration,
        mut found: impl FnMut(&[PartyStatus]) -> Option<T>,
    ) -> Result<T, Duration> {
        let since = Instant::now();
        loop {
            self.observe().await;
            if let Some(found) = found(&self.statuses) {
                return Ok(found);
            }
            if since.elapsed() >= duration {
                return Err(since.elapsed());
            }
            tokio::time::sleep(MONITOR_INTERVAL).await;
        }
    }

    /// Once every party is ready: records every party's counters, settles
    /// for two refresh intervals (a party ready before its partners records
    /// their last documents at its next refresh), then stays at rest for
    /// `linger`, counting the operators' writes and partner fetches.
    pub async fn linger(&mut self, linger: Duration) {
        let counts = |parties: &[Party]| parties.iter().map(counts).collect::<Vec<_>>();
        self.at_ready = Some(counts(&self.parties));
        if linger.is_zero() {
            return;
        }
        let settle = self.options.refresh_interval.saturating_mul(2);
        (self.common.print)(&format!(
            "every party is ready; settling for {:.1} s, then at rest for {:.0} s",
            settle.as_secs_f64(),
            linger.as_secs_f64()
        ));
        tokio::time::sleep(settle).await;
        let start = counts(&self.parties);
        tokio::time::sleep(linger).await;
        let end = counts(&self.parties);
        self.at_rest = Some(
            start
                .iter()
                .zip(&end)
                .map(|(start, end)| {
                    let delta = end.since(start);
                    AtRest {
                        duration: linger,
                        writes: delta.controller_writes(),
                        fetches: delta.fetches,
                    }
                })
                .collect(),
        );
    }

    /// Every party's state and blocking conditions, a line each.
    fn describe(&self) -> String {
        self.parties
            .iter()
            .zip(&self.statuses)
            .map(|(party, seen)| {
                let state = seen.state.map_or("unknown".to_owned(), report::state_name);
                format!("{}: {state}; {}", party.name, seen.blocking().join("; "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes `--emit` (when asked for), stops every party (all at once,
    /// each operator within its grace period) and returns the report.
    pub async fn finish(mut self) -> Result<Report, Error> {
        let emitted = match &self.options.emit {
            Some(dir) => report::emit(dir, &self.parties).map(Some),
            None => Ok(None),
        };
        futures::future::join_all(self.parties.iter_mut().map(Party::shut_down)).await;
        let _ = std::fs::remove_dir_all(&self.kubeconfigs.dir);
        if let Some(dir) = emitted? {
            (self.common.print)(&format!("wrote every object to {}", dir.display()));
        }
        Ok(Report::new(
            &self.parties,
            &self.statuses,
            self.started.elapsed(),
            &self.options,
            self.at_ready.as_deref(),
            self.at_rest.as_deref(),
        ))
    }

    async fn create_virtual_clouds(&self) -> Result<(), Error> {
        let entries: Vec<VirtualCloudPartnerEntry> = self
            .parties
            .iter()
            .map(|p| VirtualCloudPartnerEntry {
                name: p.name.as_str().to_owned(),
                endpoint: p.endpoint.as_str().to_owned(),
            })
            .collect();
        for (index, party) in self.parties.iter().enumerate() {
            let parameters = self
                .options
                .parameters
                .get(&index)
                .cloned()
                .unwrap_or_else(Parameters::carbyne_stack_default);
            let partners = entries
                .iter()
                .filter(|e| e.name != party.name.as_str())
                .cloned()
                .collect();
            let mut vc = VirtualCloud::new(
                &self.options.virtual_cloud,
                VirtualCloudSpec {
                    parameters: MpcParameters::from(parameters),
                    partners,
                },
            );
            vc.metadata.namespace = Some(self.options.namespace.clone());
            party.harness_writes.fetch_add(1, Ordering::Relaxed);
            Api::<VirtualCloud>::namespaced(party.client.clone(), &self.options.namespace)
                .create(&PostParams::default(), &vc)
                .await
                .map_err(|e| Error::Setup {
                    party: party.name.as_str().to_owned(),
                    what: format!("create the VirtualCloud: {e}"),
                })?;
        }
        Ok(())
    }
}

/// The party's counters now.
fn counts(party: &Party) -> Counts {
    Counts {
        writes: party.server.writes(),
        harness_writes: party.harness_writes.load(Ordering::Relaxed),
        fetches: party.fetches.load(Ordering::Relaxed),
    }
}

/// Distinguishes simulations in one process (their kubeconfig folders).
fn unique_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a simulation to the end, printing progress through `print`: until
/// every VC is `ready` or [`Options::timeout`] passed since the start.
pub async fn run(options: Options, print: Print) -> Result<Report, Error> {
    let timeout = options.timeout;
    let mut simulation = Simulation::start(options, print).await?;
    let remaining = timeout.saturating_sub(simulation.elapsed());
    match simulation.wait_until_ready(remaining).await {
        Ok(()) => {
            let linger = simulation.options.linger;
            simulation.linger(linger).await;
        }
        Err(Error::Timeout { .. }) => {}
        Err(other) => return Err(other),
    }
    simulation.finish().await
}

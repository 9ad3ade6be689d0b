//! The [`Reconciler`]: one reconcile of one VC, **observe → decide →
//! execute**. It reads the VC and everything around it through the ports,
//! fetches and verifies every partner's document, calls the pure
//! [`crate::decide`], and executes the plan's actions in order through the
//! ports. The only state it keeps between reconciles is what it saw of the
//! partners' documents ([`crate::seen`]), which spares status writes and is
//! rebuilt from scratch after a restart.

use std::sync::Arc;

use futures::future::join_all;

use crate::condition::Timestamp;
use crate::mac::{MacKeyError, MacKeyShares};
use crate::machine::{Action, Fetch, LocalIdentity, Observed, PartnerObservation, Plan, decide};
use crate::ports::{
    Cluster, ClusterError, CreateOutcome, Entropy, LauncherError, MpcLauncher, PartnerTransport,
    VcKey,
};
use crate::seen::{Said, SeenDocuments};
use crate::spec::{Partner, State};

/// Why a reconcile stopped. Nothing here carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// The cluster adapter failed.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The launcher failed.
    #[error("key generation launcher: {0}")]
    Launcher(#[from] LauncherError),
    /// MAC key shares could not be generated.
    #[error("MAC key share: {0}")]
    MacKey(#[from] MacKeyError),
}

impl ReconcileError {
    /// Whether retrying soon may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Cluster(e) => e.transient,
            Self::Launcher(_) => true,
            Self::MacKey(_) => false,
        }
    }
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The VC's state after the plan, `None` when the VC does not exist.
    pub state: Option<State>,
    /// The plan that was executed.
    pub plan: Plan,
}

/// Reconciles VCs of one party through its ports.
#[derive(Clone)]
pub struct Reconciler {
    cluster: Arc<dyn Cluster>,
    transport: Arc<dyn PartnerTransport>,
    launcher: Arc<dyn MpcLauncher>,
    entropy: Arc<dyn Entropy>,
    identity: LocalIdentity,
    seen: Arc<SeenDocuments>,
}

impl Reconciler {
    /// A reconciler for the party `identity`, acting through the given ports.
    pub fn new(
        identity: LocalIdentity,
        cluster: Arc<dyn Cluster>,
        transport: Arc<dyn PartnerTransport>,
        launcher: Arc<dyn MpcLauncher>,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        Self {
            cluster,
            transport,
            launcher,
            entropy,
            identity,
            seen: Arc::default(),
        }
    }

    /// This party's identity.
    pub fn identity(&self) -> &LocalIdentity {
        &self.identity
    }

    /// Observes, decides and executes once.
    pub async fn reconcile(&self, vc: &VcKey, now: Timestamp) -> Result<Outcome, ReconcileError> {
        let Some(observed) = self.observe(vc, now).await? else {
            return Ok(Outcome {
                state: None,
                plan: Plan::default(),
            });
        };
        let plan = decide(&observed);
        self.execute(&observed, &plan).await?;
        let state = plan.status().map_or(observed.status.state, |s| s.state);
        Ok(Outcome {
            state: Some(state),
            plan,
        })
    }

    /// Reads everything `decide` needs. `None` when the VC does not exist.
    pub async fn observe(
        &self,
        vc: &VcKey,
        now: Timestamp,
    ) -> Result<Option<Observed>, ReconcileError> {
        let Some(object) = self.cluster.virtual_cloud(vc).await? else {
            self.seen.retain(vc, &[]);
            return Ok(None);
        };
        let spec = object.spec.validate(&self.identity.name);
        let stored = self.cluster.partners(vc).await?;
        let admissions = self.cluster.admissions(vc).await?;
        let mac_key_exists = self.cluster.mac_key_shares_exist(vc).await?;
        let key_generation = self.launcher.key_generation(vc).await?;
        let configuration = self.cluster.configuration(vc).await?;
        let services = self.cluster.services(vc).await?;
        let gateways = self.cluster.gateways(vc).await?;
        let published = self.cluster.published_document(vc).await?;

        let wanted: &[Partner] = spec
            .as_ref()
            .map(|s| s.partners.as_slice())
            .unwrap_or_default();
        self.seen
            .retain(vc, &wanted.iter().map(|p| &p.name).collect::<Vec<_>>());
        let fetches = join_all(wanted.iter().map(|partner| {
            let accepted = stored
                .iter()
                .find(|s| s.record.name == partner.name)
                .and_then(|s| s.status.as_ref())
                .and_then(|s| s.sequence)
                // What this process saw counts once a number is recorded:
                // with none (a partner object created again with its VC),
                // what it saw belongs to what was deleted.
                .map(|recorded| recorded.max(self.seen.highest(vc, &partner.name).unwrap_or(0)));
            self.fetch(vc, partner, accepted)
        }))
        .await;
        let mut partners: Vec<PartnerObservation> = wanted
            .iter()
            .zip(fetches)
            .map(|(partner, fetch)| {
                let seen_since = match &fetch {
                    Fetch::Fetched(doc) => {
                        let said = Said::of(
                            doc,
                            &self.identity.name,
                            self.identity.certificate.fingerprint(),
                        );
                        Some(self.seen.saw(vc, &partner.name, doc.sequence, said).since)
                    }
                    Fetch::Failed(_) | Fetch::Skipped => None,
                };
                PartnerObservation {
                    name: partner.name.clone(),
                    fetch,
                    stored: stored
                        .iter()
                        .find(|s| s.record.name == partner.name)
                        .cloned(),
                    seen_since,
                }
            })
            .collect();
        for record in stored {
            if !partners.iter().any(|p| p.name == record.record.name) {
                partners.push(PartnerObservation {
                    name: record.record.name.clone(),
                    fetch: Fetch::Skipped,
                    stored: Some(record),
                    seen_since: None,
                });
            }
        }
        partners.sort_by(|a, b| a.name.cmp(&b.name));

        Ok(Some(Observed {
            vc: vc.clone(),
            generation: object.generation,
            spec,
            status: object.status,
            identity: self.identity.clone(),
            partners,
            admissions,
            mac_key_exists,
            key_generation,
            configuration,
            services,
            gateways,
            published,
            now,
        }))
    }

    /// Fetches and verifies one partner's document; `accepted` is the
    /// highest sequence number accepted from it before.
    async fn fetch(&self, vc: &VcKey, partner: &Partner, accepted: Option<u64>) -> Fetch {
        match self.transport.fetch(&vc.name, &partner.endpoint).await {
            Ok(document) => match document.verify(&vc.name, partner) {
                Ok(verified) if accepted.is_some_and(|a| verified.sequence < a) => {
                    Fetch::Failed(format!(
                        "document refused: sequence number {} is lower than {} accepted before (rollback)",
                        verified.sequence,
                        accepted.unwrap_or_default()
                    ))
                }
                Ok(verified) => Fetch::Fetched(Box::new(verified)),
                Err(refused) => Fetch::Failed(format!("document refused: {refused}")),
            },
            Err(error) => Fetch::Failed(error.to_string()),
        }
    }

    /// Executes `plan`, decided from `observed`, in order. Stops at the first error.
    pub async fn execute(&self, observed: &Observed, plan: &Plan) -> Result<(), ReconcileError> {
        let vc = &observed.vc;
        let cluster = &self.cluster;
        for action in &plan.actions {
            match action {
                Action::StoreCertificate {
                    partner,
                    certificate,
                } => {
                    cluster.store_certificate(vc, partner, certificate).await?;
                }
                Action::UpsertPartner(record) => cluster.upsert_partner(vc, record).await?,
                Action::UpdatePartnerStatus { partner, status } => {
                    cluster.update_partner_status(vc, partner, status).await?;
                }
                Action::RemovePartner { partner } => cluster.remove_partner(vc, partner).await?,
                Action::BindAdmission {
                    admission,
                    fingerprint,
                } => {
                    cluster.bind_admission(vc, admission, fingerprint).await?;
                }
                Action::PublishDocument(body) => cluster.publish_document(vc, body).await?,
                Action::CreateMacKeyShares => self.create_mac_key_shares(observed).await?,
                Action::LaunchKeyGeneration(formation) => {
                    self.launcher.launch_key_generation(vc, formation).await?;
                }
                Action::WriteConfiguration(formation) => {
                    cluster.write_configuration(vc, formation).await?
                }
                Action::CreateServices(formation) => cluster.create_services(vc, formation).await?,
                Action::DeployGateways(formation) => cluster.deploy_gateways(vc, formation).await?,
                Action::RecordEvent(event) => cluster.record_event(vc, event).await?,
                Action::UpdateStatus(status) => cluster.update_status(vc, status).await?,
            }
        }
        Ok(())
    }

    /// Draws shares and creates the Secret; an existing Secret wins and the
    /// fresh shares are dropped unseen.
    async fn create_mac_key_shares(&self, observed: &Observed) -> Result<(), ReconcileError> {
        let Ok(spec) = &observed.spec else {
            return Ok(());
        };
        let shares = MacKeyShares::generate(&spec.parameters, self.entropy.as_ref())?;
        match self
            .cluster
            .create_mac_key_shares(&observed.vc, &shares)
            .await?
        {
            CreateOutcome::Created | CreateOutcome::AlreadyExisted => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;

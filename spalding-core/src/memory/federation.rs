//! [`Federation`]: N parties of one Virtual Cloud in one process, each with
//! an [`InMemoryCluster`], a [`SimulatedLauncher`] and the real
//! [`Reconciler`], reading each other's documents through one
//! [`InProcessTransport`]. Each party's VC lists every other party. Used by
//! the examples, the benchmarks and the lifecycle tests.

use std::sync::Arc;

use crate::condition::Timestamp;
use crate::machine::LocalIdentity;
use crate::memory::{
    InMemoryCluster, InProcessTransport, InsecureSeededEntropy, Readiness, SimulatedLauncher,
};
use crate::parameters::ValidatedParameters;
use crate::ports::VcKey;
use crate::reconciler::{Outcome, ReconcileError, Reconciler};
use crate::spec::{PartnerEntry, State, VirtualCloudSpec};

/// One party of a [`Federation`].
pub struct FederationParty {
    /// Its identity.
    pub identity: LocalIdentity,
    /// Its objects.
    pub cluster: Arc<InMemoryCluster>,
    /// Its simulated key generation.
    pub launcher: Arc<SimulatedLauncher>,
    /// Its reconciler.
    pub reconciler: Reconciler,
    entropy: Arc<InsecureSeededEntropy>,
}

/// N parties forming one VC in memory.
pub struct Federation {
    vc: VcKey,
    transport: Arc<InProcessTransport>,
    parties: Vec<FederationParty>,
}

impl Federation {
    /// Parties with the given identities, each with a VC named `vc` whose
    /// partners are all the others. Entropy is seeded (insecure) from `seed`
    /// and the party's index.
    pub fn new(
        vc: VcKey,
        identities: Vec<LocalIdentity>,
        parameters: &ValidatedParameters,
        readiness: Readiness,
        seed: u64,
    ) -> Self {
        let transport = Arc::new(InProcessTransport::new());
        let entries: Vec<PartnerEntry> = identities
            .iter()
            .map(|i| PartnerEntry {
                name: i.name.to_string(),
                endpoint: i.endpoint.to_string(),
            })
            .collect();
        let parties = identities
            .into_iter()
            .enumerate()
            .map(|(index, identity)| {
                let cluster = Arc::new(InMemoryCluster::new(readiness));
                transport.register(identity.endpoint.clone(), cluster.clone());
                let spec = VirtualCloudSpec {
                    parameters: parameters.to_wire(),
                    partners: entries
                        .iter()
                        .filter(|e| e.name != identity.name.as_str())
                        .cloned()
                        .collect(),
                };
                cluster.apply_virtual_cloud(&vc, spec);
                let launcher = Arc::new(SimulatedLauncher::new());
                let entropy = Arc::new(InsecureSeededEntropy::new(seed.wrapping_add(index as u64)));
                let reconciler = Reconciler::new(
                    identity.clone(),
                    cluster.clone(),
                    transport.clone(),
                    launcher.clone(),
                    entropy.clone(),
                );
                FederationParty {
                    identity,
                    cluster,
                    launcher,
                    reconciler,
                    entropy,
                }
            })
            .collect();
        Self {
            vc,
            transport,
            parties,
        }
    }

    /// The VC's key, the same at every party.
    pub fn vc(&self) -> &VcKey {
        &self.vc
    }

    /// The parties, in the order given.
    pub fn parties(&self) -> &[FederationParty] {
        &self.parties
    }

    /// The shared transport (to take parties down and count fetches).
    pub fn transport(&self) -> &InProcessTransport {
        &self.transport
    }

    /// Gives party `index` a new identity (a rotated certificate), keeping its
    /// cluster, launcher and entropy, as an operator restarting Spalding with a
    /// new VCP certificate would.
    pub fn set_identity(&mut self, index: usize, identity: LocalIdentity) {
        let transport = self.transport.clone();
        if let Some(party) = self.parties.get_mut(index) {
            party.reconciler = Reconciler::new(
                identity.clone(),
                party.cluster.clone(),
                transport,
                party.launcher.clone(),
                party.entropy.clone(),
            );
            party.identity = identity;
        }
    }

    /// Reconciles party `index` once.
    pub async fn reconcile(
        &self,
        index: usize,
        now: Timestamp,
    ) -> Result<Option<Outcome>, ReconcileError> {
        match self.parties.get(index) {
            Some(party) => party.reconciler.reconcile(&self.vc, now).await.map(Some),
            None => Ok(None),
        }
    }

    /// Reconciles every party once, in order.
    pub async fn round(&self, now: &Timestamp) -> Result<Vec<Outcome>, ReconcileError> {
        let mut outcomes = Vec::with_capacity(self.parties.len());
        for party in &self.parties {
            outcomes.push(party.reconciler.reconcile(&self.vc, now.clone()).await?);
        }
        Ok(outcomes)
    }

    /// Every party admits every partner it has fetched, pinned to the
    /// fingerprint it shows for it, unless already admitted. Returns how many
    /// admissions were created.
    pub fn admit_all(&self) -> usize {
        let mut created = 0;
        for party in &self.parties {
            for partner in self
                .parties
                .iter()
                .filter(|p| p.identity.name != party.identity.name)
            {
                let name = &partner.identity.name;
                let shown = party
                    .cluster
                    .partner_status(&self.vc, name)
                    .and_then(|s| s.fingerprint);
                if let Some(shown) = shown
                    && party.cluster.admissions_of(&self.vc, name).is_empty()
                {
                    party.cluster.admit(&self.vc, name, Some(shown));
                    created += 1;
                }
            }
        }
        created
    }

    /// Each party's state.
    pub fn states(&self) -> Vec<State> {
        self.parties
            .iter()
            .map(|p| p.cluster.status(&self.vc).unwrap_or_default().state)
            .collect()
    }

    /// Whether every party is ready.
    pub fn all_ready(&self) -> bool {
        self.states().iter().all(|s| *s == State::Ready)
    }
}

//! What the simulation watches of each party, one look at a time
//! (`observe`): the VC's state (a progress line per change) and
//! conditions, the MAC key share Secret's resourceVersions, and, with
//! auto-admit, the partner records to admit. Also the admission a person
//! would make (`admit`).

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use spalding_core::configuration::MAC_KEY_SECRET;
use tokio::time::Instant;

use super::party::{Common, Party};
use super::report::state_name;
use crate::crd::{
    ConditionState, StatusCondition, VirtualCloud, VirtualCloudPartner,
    VirtualCloudPartnerAdmission, VirtualCloudPartnerAdmissionSpec, VirtualCloudState,
};

/// What was last seen of one party.
#[derive(Debug, Clone, Default)]
pub struct PartyStatus {
    /// The VC's state; `None` before its status was first written.
    pub state: Option<VirtualCloudState>,
    /// The VC's conditions.
    pub conditions: Vec<StatusCondition>,
    /// Time from the start until the VC was first seen `ready`.
    pub ready_after: Option<Duration>,
    /// Every resourceVersion of the MAC key share Secret seen (one: it was
    /// written once and never changed).
    pub mac_key_secret_versions: BTreeSet<String>,
    /// Partner records auto-admitted (once each).
    auto_admitted: HashSet<String>,
}

impl PartyStatus {
    /// The condition of type `type_`.
    pub fn condition(&self, type_: &str) -> Option<&StatusCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether the VC is `ready`.
    pub fn is_ready(&self) -> bool {
        self.state == Some(VirtualCloudState::Ready)
    }

    /// The conditions that do not hold, as `type=status (reason): message`.
    pub fn blocking(&self) -> Vec<String> {
        self.conditions
            .iter()
            .filter(|c| c.status != ConditionState::True)
            .map(|c| format!("{}={:?} ({}): {}", c.type_, c.status, c.reason, c.message))
            .collect()
    }
}

/// One look at `party`: state changes (printed), conditions, the MAC key
/// Secret and, with `auto_admit`, admissions.
pub(super) async fn observe(
    party: &Party,
    seen: &mut PartyStatus,
    common: &Common,
    auto_admit: bool,
    started: Instant,
) -> Result<(), kube::Error> {
    let vcs: Api<VirtualCloud> = Api::namespaced(party.client.clone(), &common.namespace);
    let vc = vcs.get(&common.vc).await?;
    // No status yet: no operator has reconciled the VC.
    let Some(status) = vc.status else {
        return Ok(());
    };
    if seen.state != Some(status.state) {
        let from = seen.state.map_or("created".to_owned(), state_name);
        (common.print)(&format!(
            "{}: {from} → {}",
            party.name,
            state_name(status.state)
        ));
        seen.state = Some(status.state);
        if status.state == VirtualCloudState::Ready && seen.ready_after.is_none() {
            seen.ready_after = Some(started.elapsed());
        }
    }
    seen.conditions = status.conditions;
    let secrets: Api<Secret> = Api::namespaced(party.client.clone(), &common.namespace);
    if let Some(secret) = secrets.get_metadata_opt(MAC_KEY_SECRET).await?
        && let Some(version) = secret.resource_version()
    {
        seen.mac_key_secret_versions.insert(version);
    }
    if auto_admit {
        auto_admit_partners(party, seen, common).await?;
    }
    Ok(())
}

/// Admits, once each, every partner whose record shows a fingerprint,
/// pinned to it. A certificate that changes later is not admitted again
/// here: that takes [`super::Simulation::admit`], as it takes a person.
async fn auto_admit_partners(
    party: &Party,
    seen: &mut PartyStatus,
    common: &Common,
) -> Result<(), kube::Error> {
    let records: Api<VirtualCloudPartner> =
        Api::namespaced(party.client.clone(), &common.namespace);
    for record in records.list(&ListParams::default()).await? {
        let name = record.name_any();
        let Some(fingerprint) = record.status.as_ref().and_then(|s| s.fingerprint.clone()) else {
            continue;
        };
        if seen.auto_admitted.contains(&name) {
            continue;
        }
        admit(party, common, &name, &fingerprint).await?;
        (common.print)(&format!(
            "{}: admitted {} ({fingerprint})",
            party.name, record.spec.name
        ));
        seen.auto_admitted.insert(name);
    }
    Ok(())
}

/// Creates the admission `record` (the partner record's name) in `party`'s
/// API server pinned to `fingerprint`. An admission pinned to another
/// fingerprint is deleted first: admissions cannot be changed (their CRD
/// says so), a person deletes and creates them again.
pub(super) async fn admit(
    party: &Party,
    common: &Common,
    record: &str,
    fingerprint: &str,
) -> Result<(), kube::Error> {
    let admissions: Api<VirtualCloudPartnerAdmission> =
        Api::namespaced(party.client.clone(), &common.namespace);
    let spec = VirtualCloudPartnerAdmissionSpec {
        partner: record.to_owned(),
        fingerprint: Some(fingerprint.to_owned()),
    };
    if let Some(existing) = admissions.get_opt(record).await? {
        if existing.spec == spec {
            return Ok(());
        }
        party.harness_writes.fetch_add(1, Ordering::Relaxed);
        admissions.delete(record, &DeleteParams::default()).await?;
    }
    let admission = VirtualCloudPartnerAdmission::new(record, spec);
    party.harness_writes.fetch_add(1, Ordering::Relaxed);
    match admissions.create(&PostParams::default(), &admission).await {
        Ok(_) => Ok(()),
        // Created meanwhile (auto-admit of the same fingerprint).
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

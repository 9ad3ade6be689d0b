//! [`InMemoryCluster`]: one party's Spalding objects in a map, behind the
//! [`Cluster`] port. It keeps the semantics that matter to the state machine
//! (create-only MAC key shares, generation bumped on spec changes only, a
//! growing document sequence number) and counts writes, so tests can check
//! that a VC at rest writes nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::certificate::{Certificate, Fingerprint};
use crate::configuration::Formation;
use crate::document::{DocumentBody, PartnerDocument};
use crate::mac::MacKeyShares;
use crate::name::PartyName;
use crate::partner::{Admission, PartnerRecord, PartnerStatus, StoredPartner};
use crate::ports::{
    Applied, Cluster, ClusterError, CreateOutcome, Event, VcKey, VirtualCloudObject,
};
use crate::spec::{VirtualCloudSpec, VirtualCloudStatus};

/// When applied services and gateways report ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as they are applied (a simulation: nothing runs).
    Immediate,
    /// Only after [`InMemoryCluster::mark_ready`].
    Manual,
}

#[derive(Debug)]
struct Entry {
    object: VirtualCloudObject,
    partners: BTreeMap<PartyName, (PartnerRecord, Option<PartnerStatus>)>,
    certificates: BTreeMap<PartyName, Certificate>,
    admissions: Vec<Admission>,
    mac: Option<MacKeyShares>,
    configuration: Option<Formation>,
    services: Option<Applied>,
    gateways: Option<Applied>,
    published: Option<PartnerDocument>,
    events: Vec<Event>,
}

#[derive(Debug)]
struct Inner {
    entries: BTreeMap<VcKey, Entry>,
    writes: u64,
    readiness: Readiness,
}

/// A party's cluster, in memory.
#[derive(Debug)]
pub struct InMemoryCluster {
    inner: Mutex<Inner>,
}

fn missing(operation: &str, vc: &VcKey) -> ClusterError {
    ClusterError {
        operation: format!("{operation} of virtual cloud {}/{}", vc.namespace, vc.name),
        message: "the virtual cloud does not exist".to_owned(),
        transient: false,
    }
}

impl InMemoryCluster {
    /// An empty cluster.
    pub fn new(readiness: Readiness) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: BTreeMap::new(),
                writes: 0,
                readiness,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written
        // (every write is a single insert), so a poisoned lock is safe to reuse.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write<T>(
        &self,
        operation: &str,
        vc: &VcKey,
        change: impl FnOnce(&mut Entry, Readiness) -> T,
    ) -> Result<T, ClusterError> {
        let mut inner = self.lock();
        let readiness = inner.readiness;
        let entry = inner
            .entries
            .get_mut(vc)
            .ok_or_else(|| missing(operation, vc))?;
        let out = change(entry, readiness);
        inner.writes += 1;
        Ok(out)
    }

    fn read<T>(&self, vc: &VcKey, view: impl FnOnce(&Entry) -> T) -> Option<T> {
        self.lock().entries.get(vc).map(view)
    }

    /// Creates the VC or replaces its spec (a user's `kubectl apply`). The
    /// generation grows only when the spec changes.
    pub fn apply_virtual_cloud(&self, vc: &VcKey, spec: VirtualCloudSpec) {
        let mut inner = self.lock();
        let entry = inner.entries.entry(vc.clone()).or_insert_with(|| Entry {
            object: VirtualCloudObject {
                generation: Some(0),
                spec: spec.clone(),
                status: VirtualCloudStatus::default(),
            },
            partners: BTreeMap::new(),
            certificates: BTreeMap::new(),
            admissions: Vec::new(),
            mac: None,
            configuration: None,
            services: None,
            gateways: None,
            published: None,
            events: Vec::new(),
        });
        if entry.object.generation == Some(0) || entry.object.spec != spec {
            entry.object.spec = spec;
            entry.object.generation = Some(entry.object.generation.unwrap_or(0) + 1);
        }
    }

    /// Admits `partner` (an operator's `VirtualCloudPartnerAdmission`),
    /// optionally pinned to a fingerprint. Returns the admission's name.
    pub fn admit(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        pinned: Option<Fingerprint>,
    ) -> Option<String> {
        let name = format!("{}-{partner}-admission", vc.name);
        let admission = Admission {
            name: name.clone(),
            partner: partner.clone(),
            pinned,
            bound: None,
        };
        let mut inner = self.lock();
        let entry = inner.entries.get_mut(vc)?;
        entry.admissions.retain(|a| a.name != name);
        entry.admissions.push(admission);
        Some(name)
    }

    /// The admissions of `partner`.
    pub fn admissions_of(&self, vc: &VcKey, partner: &PartyName) -> Vec<Admission> {
        self.read(vc, |e| {
            e.admissions
                .iter()
                .filter(|a| &a.partner == partner)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    }

    /// Deletes every admission of `partner`.
    pub fn revoke(&self, vc: &VcKey, partner: &PartyName) {
        if let Some(entry) = self.lock().entries.get_mut(vc) {
            entry.admissions.retain(|a| &a.partner != partner);
        }
    }

    /// Makes applied services and gateways ready (with [`Readiness::Manual`]).
    pub fn mark_ready(&self, vc: &VcKey) {
        if let Some(entry) = self.lock().entries.get_mut(vc) {
            for applied in [&mut entry.services, &mut entry.gateways]
                .into_iter()
                .flatten()
            {
                applied.ready = true;
            }
        }
    }

    /// The VC's status.
    pub fn status(&self, vc: &VcKey) -> Option<VirtualCloudStatus> {
        self.read(vc, |e| e.object.status.clone())
    }

    /// A partner's status.
    pub fn partner_status(&self, vc: &VcKey, partner: &PartyName) -> Option<PartnerStatus> {
        self.read(vc, |e| e.partners.get(partner).and_then(|(_, s)| s.clone()))
            .flatten()
    }

    /// The partner-info document as served, with its sequence number.
    pub fn document(&self, vc_name: &str) -> Option<PartnerDocument> {
        let inner = self.lock();
        inner
            .entries
            .iter()
            .find(|(k, _)| k.name == vc_name)
            .and_then(|(_, e)| e.published.clone())
    }

    /// The Events recorded on the VC.
    pub fn events(&self, vc: &VcKey) -> Vec<Event> {
        self.read(vc, |e| e.events.clone()).unwrap_or_default()
    }

    /// The MAC key shares, for tests that check they never change.
    pub fn mac_key_shares(&self, vc: &VcKey) -> Option<MacKeyShares> {
        self.read(vc, |e| e.mac.clone()).flatten()
    }

    /// Every write so far.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

#[async_trait]
impl Cluster for InMemoryCluster {
    async fn virtual_cloud(&self, vc: &VcKey) -> Result<Option<VirtualCloudObject>, ClusterError> {
        Ok(self.read(vc, |e| e.object.clone()))
    }

    async fn partners(&self, vc: &VcKey) -> Result<Vec<StoredPartner>, ClusterError> {
        Ok(self
            .read(vc, |e| {
                e.partners
                    .iter()
                    .map(|(name, (record, status))| StoredPartner {
                        record: record.clone(),
                        status: status.clone(),
                        certificate: e.certificates.get(name).cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn admissions(&self, vc: &VcKey) -> Result<Vec<Admission>, ClusterError> {
        Ok(self.read(vc, |e| e.admissions.clone()).unwrap_or_default())
    }

    async fn mac_key_shares_exist(&self, vc: &VcKey) -> Result<bool, ClusterError> {
        Ok(self.read(vc, |e| e.mac.is_some()).unwrap_or(false))
    }

    async fn create_mac_key_shares(
        &self,
        vc: &VcKey,
        shares: &MacKeyShares,
    ) -> Result<CreateOutcome, ClusterError> {
        let mut inner = self.lock();
        let entry = inner
            .entries
            .get_mut(vc)
            .ok_or_else(|| missing("create MAC key shares", vc))?;
        if entry.mac.is_some() {
            return Ok(CreateOutcome::AlreadyExisted);
        }
        entry.mac = Some(shares.clone());
        inner.writes += 1;
        Ok(CreateOutcome::Created)
    }

    async fn configuration(&self, vc: &VcKey) -> Result<Option<Formation>, ClusterError> {
        Ok(self.read(vc, |e| e.configuration.clone()).flatten())
    }

    async fn write_configuration(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), ClusterError> {
        self.write("write configuration", vc, |e, _| {
            e.configuration = Some(formation.clone())
        })
    }

    async fn services(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError> {
        Ok(self.read(vc, |e| e.services.clone()).flatten())
    }

    async fn create_services(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError> {
        self.write("create services", vc, |e, readiness| {
            e.services = Some(Applied {
                formation: formation.clone(),
                ready: readiness == Readiness::Immediate,
            });
        })
    }

    async fn gateways(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError> {
        Ok(self.read(vc, |e| e.gateways.clone()).flatten())
    }

    async fn deploy_gateways(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError> {
        self.write("deploy gateways", vc, |e, readiness| {
            e.gateways = Some(Applied {
                formation: formation.clone(),
                ready: readiness == Readiness::Immediate,
            });
        })
    }

    async fn published_document(&self, vc: &VcKey) -> Result<Option<DocumentBody>, ClusterError> {
        Ok(self
            .read(vc, |e| e.published.as_ref().map(|d| d.body.clone()))
            .flatten())
    }

    async fn publish_document(&self, vc: &VcKey, body: &DocumentBody) -> Result<(), ClusterError> {
        self.write("publish document", vc, |e, _| {
            let sequence = e.published.as_ref().map_or(1, |d| d.sequence + 1);
            e.published = Some(PartnerDocument {
                body: body.clone(),
                sequence,
                signature: None,
            });
        })
    }

    async fn store_certificate(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        certificate: &Certificate,
    ) -> Result<(), ClusterError> {
        self.write("store certificate", vc, |e, _| {
            e.certificates.insert(partner.clone(), certificate.clone());
        })
    }

    async fn upsert_partner(&self, vc: &VcKey, record: &PartnerRecord) -> Result<(), ClusterError> {
        self.write("upsert partner", vc, |e, _| {
            let status = e.partners.remove(&record.name).and_then(|(_, s)| s);
            e.partners
                .insert(record.name.clone(), (record.clone(), status));
        })
    }

    async fn update_partner_status(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        status: &PartnerStatus,
    ) -> Result<(), ClusterError> {
        let mut inner = self.lock();
        let entry = inner
            .entries
            .get_mut(vc)
            .ok_or_else(|| missing("update partner status", vc))?;
        let Some((_, stored)) = entry.partners.get_mut(partner) else {
            return Err(ClusterError {
                operation: format!("update status of partner {partner}"),
                message: "the partner does not exist".to_owned(),
                transient: true,
            });
        };
        *stored = Some(status.clone());
        inner.writes += 1;
        Ok(())
    }

    async fn remove_partner(&self, vc: &VcKey, partner: &PartyName) -> Result<(), ClusterError> {
        self.write("remove partner", vc, |e, _| {
            e.partners.remove(partner);
            e.certificates.remove(partner);
        })
    }

    async fn bind_admission(
        &self,
        vc: &VcKey,
        admission: &str,
        fingerprint: &Fingerprint,
    ) -> Result<(), ClusterError> {
        self.write("bind admission", vc, |e, _| {
            for a in e
                .admissions
                .iter_mut()
                .filter(|a| a.name == admission && a.bound.is_none())
            {
                a.bound = Some(fingerprint.clone());
            }
        })
    }

    async fn record_event(&self, vc: &VcKey, event: &Event) -> Result<(), ClusterError> {
        self.write("record event", vc, |e, _| e.events.push(event.clone()))
    }

    async fn update_status(
        &self,
        vc: &VcKey,
        status: &VirtualCloudStatus,
    ) -> Result<(), ClusterError> {
        self.write("update status", vc, |e, _| e.object.status = status.clone())
    }
}

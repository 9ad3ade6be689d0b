//! [`InMemoryCluster`]: one party's Spalding objects in a map, behind the
//! [`Cluster`] port. It keeps the semantics that matter to the state machine
//! (create-only MAC key shares, generation bumped on spec changes only, a
//! growing document sequence number) and counts writes, so tests can check
//! that a VC at rest writes nothing.
//!
//! It also keeps what a real cluster would be asked to apply, rendered by
//! [`crate::render`] with its [`RenderSettings`]: the Carbyne Stack
//! configuration ConfigMaps, the foundation services and the secure
//! gateway, each set replaced whole when written again. Embedders and tests
//! read them with [`InMemoryCluster::rendered`]. Nothing runs them, so
//! readiness is decided by [`Readiness`], not by their rules.

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
use crate::render::istio::render_gateways;
use crate::render::templates::render_services;
use crate::render::{RenderError, RenderSettings, RenderedObject, configuration_maps};
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
    /// What was rendered, per step, in application order.
    rendered: BTreeMap<Step, Vec<RenderedObject>>,
}

/// The step an object was rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Configuration,
    Services,
    Gateways,
}

#[derive(Debug)]
struct Inner {
    entries: BTreeMap<VcKey, Entry>,
    writes: u64,
    readiness: Readiness,
    settings: RenderSettings,
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
                settings: RenderSettings::default(),
            }),
        }
    }

    /// Renders with `settings` instead of the defaults.
    pub fn with_render_settings(self, settings: RenderSettings) -> Self {
        let mut inner = self
            .inner
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.settings = settings;
        Self {
            inner: Mutex::new(inner),
        }
    }

    /// Renders one step's objects with the cluster's settings and keeps
    /// them, replacing what that step rendered before.
    fn render(
        &self,
        operation: &str,
        vc: &VcKey,
        step: Step,
        render: impl FnOnce(&RenderSettings) -> Result<Vec<RenderedObject>, RenderError>,
    ) -> Result<(), ClusterError> {
        let mut inner = self.lock();
        let objects = render(&inner.settings).map_err(|e| ClusterError {
            operation: format!("{operation} of virtual cloud {}/{}", vc.namespace, vc.name),
            message: e.to_string(),
            transient: false,
        })?;
        let entry = inner
            .entries
            .get_mut(vc)
            .ok_or_else(|| missing(operation, vc))?;
        entry.rendered.insert(step, objects);
        Ok(())
    }

    /// Every object rendered for the VC so far, as a cluster would hold
    /// them: the configuration ConfigMaps, the foundation services, then
    /// the secure gateway and its VirtualServices.
    pub fn rendered(&self, vc: &VcKey) -> Vec<RenderedObject> {
        self.read(vc, |e| e.rendered.values().flatten().cloned().collect())
            .unwrap_or_default()
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
            rendered: BTreeMap::new(),
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
        self.render("write configuration", vc, Step::Configuration, |s| {
            configuration_maps(formation, s)
        })?;
        self.write("write configuration", vc, |e, _| {
            e.configuration = Some(formation.clone())
        })
    }

    async fn services(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError> {
        Ok(self.read(vc, |e| e.services.clone()).flatten())
    }

    async fn create_services(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError> {
        self.render("create services", vc, Step::Services, |s| {
            render_services(&vc.name, formation, s)
        })?;
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
        self.render("deploy gateways", vc, Step::Gateways, |s| {
            Ok(render_gateways(s))
        })?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::executor::block_on;

    use super::*;
    use crate::parameters::{Parameters, carbyne_stack_default};

    fn cluster(settings: RenderSettings) -> (InMemoryCluster, VcKey) {
        let vc = VcKey::new("ns", "vc");
        let cluster = InMemoryCluster::new(Readiness::Immediate).with_render_settings(settings);
        let spec = VirtualCloudSpec {
            parameters: Parameters::carbyne_stack_default(),
            partners: Vec::new(),
        };
        cluster.apply_virtual_cloud(&vc, spec);
        (cluster, vc)
    }

    /// Player 0 of a VC whose members the renderers here do not need.
    fn formation() -> Formation {
        Formation {
            player_id: 0,
            parameters: carbyne_stack_default(),
            members: Vec::new().into(),
        }
    }

    #[test]
    fn services_are_rendered_with_the_clusters_settings_and_replaced_whole() {
        let mut settings = RenderSettings::default();
        settings.services.truncate(1);
        settings.services[0].name = "${vc}-generator".to_owned();
        let (cluster, vc) = cluster(settings);
        block_on(cluster.create_services(&vc, &formation())).unwrap();
        block_on(cluster.create_services(&vc, &formation())).unwrap();
        let rendered = cluster.rendered(&vc);
        assert_eq!(rendered.len(), 1, "written twice, kept once");
        assert_eq!(rendered[0].name, "vc-generator");
        assert_eq!(rendered[0].kind, "TupleGenerator");
        assert!(block_on(cluster.services(&vc)).unwrap().unwrap().ready);
    }

    #[test]
    fn a_template_that_does_not_render_writes_nothing() {
        let mut settings = RenderSettings::default();
        settings.services[0].name = "${unknown}".to_owned();
        let (cluster, vc) = cluster(settings);
        let error = block_on(cluster.create_services(&vc, &formation())).unwrap_err();
        assert!(error.message.contains("unknown placeholder"), "{error}");
        assert!(!error.transient);
        assert_eq!(cluster.writes(), 0);
        assert!(block_on(cluster.services(&vc)).unwrap().is_none());
        assert!(cluster.rendered(&vc).is_empty());
    }
}

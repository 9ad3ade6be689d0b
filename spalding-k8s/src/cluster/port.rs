//! The [`Cluster`] port implemented with kube: one method, one or two API
//! calls, named in each method's comment so the tests' request scripts can be
//! read against it.

use std::collections::BTreeMap;
use std::convert::Infallible;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use spalding_core::certificate::{Certificate, Fingerprint};
use spalding_core::configuration::{
    ENGINE_PARAMS_CONFIG_MAP, Formation, MAC_KEY_SECRET, VCP_CONFIG_MAP,
};
use spalding_core::document::{DocumentBody, PartnerDocument};
use spalding_core::mac::MacKeyShares;
use spalding_core::name::PartyName;
use spalding_core::partner::{
    Admission, CERTIFICATE_KEY, PartnerRecord, PartnerStatus, StoredPartner,
    certificate_config_map_name, partner_object_name,
};
use spalding_core::ports::{
    Applied, Cluster, ClusterError, CreateOutcome, Event, EventKind, VcKey, VirtualCloudObject,
};
use spalding_core::spec::VirtualCloudStatus;
use tracing::{debug, warn};

use super::objects::{self, COMPONENT_CERTIFICATE, COMPONENT_CONFIGURATION, COMPONENT_DOCUMENT};
use super::{
    DOCUMENT_KEY, FIELD_MANAGER, FORMATION_ANNOTATION, KubeCluster, SEQUENCE_KEY,
    document_config_map_name, kube_error, not_found, vc_name,
};
use crate::crd::{
    ConversionError, VirtualCloud, VirtualCloudPartner, VirtualCloudPartnerAdmission,
    VirtualCloudPartnerAdmissionStatus, VirtualCloudPartnerStatus, VirtualCloudStatus as CrdStatus,
};

fn apply() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

impl KubeCluster {
    /// Server-side applies a ConfigMap.
    pub(super) async fn apply_config_map(
        &self,
        vc: &VcKey,
        map: &ConfigMap,
    ) -> Result<(), ClusterError> {
        let name = map.metadata.name.clone().unwrap_or_default();
        self.api::<ConfigMap>(vc)
            .patch(&name, &apply(), &Patch::Apply(map))
            .await
            .map_err(|e| kube_error(format!("apply ConfigMap {}/{name}", vc.namespace), &e))?;
        Ok(())
    }

    pub(super) async fn config_map(
        &self,
        vc: &VcKey,
        name: &str,
    ) -> Result<Option<ConfigMap>, ClusterError> {
        self.api::<ConfigMap>(vc)
            .get_opt(name)
            .await
            .map_err(|e| kube_error(format!("read ConfigMap {}/{name}", vc.namespace), &e))
    }

    fn set_sequence(&self, vc: &VcKey, sequence: u64) {
        self.known().entry(vc.clone()).or_default().sequence = Some(sequence);
    }

    /// PATCH (merge) the VC status's reservation of document sequence
    /// numbers up to `reserve`, before a document above the old one.
    async fn reserve_sequence(&self, vc: &VcKey, reserve: u64) -> Result<(), ClusterError> {
        let patch = serde_json::json!({"status": {"documentSequence": reserve}});
        self.api::<VirtualCloud>(vc)
            .patch_status(&vc.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                kube_error(
                    format!("reserve document sequence numbers of {}", vc_name(vc)),
                    &e,
                )
            })?;
        self.known().entry(vc.clone()).or_default().reserved = Some(reserve);
        Ok(())
    }

    /// Deletes `name` of kind `K`; an absent object is fine.
    async fn delete_if_present<K>(&self, vc: &VcKey, name: &str) -> Result<(), ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        match self.api::<K>(vc).delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(kube_error(
                format!("delete {} {}/{name}", K::kind(&()), vc.namespace),
                &e,
            )),
        }
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    /// GET the VirtualCloud.
    async fn virtual_cloud(&self, vc: &VcKey) -> Result<Option<VirtualCloudObject>, ClusterError> {
        let Some(object) = self
            .api::<VirtualCloud>(vc)
            .get_opt(&vc.name)
            .await
            .map_err(|e| kube_error(format!("read virtual cloud {}", vc_name(vc)), &e))?
        else {
            return Ok(None);
        };
        self.remember(vc, &object);
        Ok(Some(VirtualCloudObject {
            generation: object.metadata.generation,
            spec: (&object.spec).into(),
            status: object.status.as_ref().map(Into::into).unwrap_or_default(),
        }))
    }

    /// LIST the VC's VirtualCloudPartners, then its certificate ConfigMaps.
    /// Records and certificates already parsed at the listed
    /// resourceVersion are taken from [`super::reads`].
    async fn partners(&self, vc: &VcKey) -> Result<Vec<StoredPartner>, ClusterError> {
        let selector = objects::selector(&vc.name, objects::COMPONENT_PARTNER);
        let listed = self
            .api::<VirtualCloudPartner>(vc)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| kube_error(format!("list partners of {}", vc_name(vc)), &e))?;
        if listed.items.is_empty() {
            self.partner_reads().remove(vc);
            return Ok(Vec::new());
        }
        let certificates = self
            .api::<ConfigMap>(vc)
            .list(
                &ListParams::default().labels(&objects::selector(&vc.name, COMPONENT_CERTIFICATE)),
            )
            .await
            .map_err(|e| kube_error(format!("list partner certificates of {}", vc_name(vc)), &e))?;
        let mut all_reads = self.partner_reads();
        let reads = all_reads.entry(vc.clone()).or_default();
        let mut partners = Vec::with_capacity(listed.items.len());
        for object in &listed.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            let version = object.metadata.resource_version.as_deref();
            let converted = reads.partners.get_or_parse(&name, version, || {
                let record = object.spec.to_record(&name)?;
                let status = object
                    .status
                    .as_ref()
                    .map(|s| s.to_core(&name))
                    .transpose()?;
                Ok::<_, ConversionError>((record, status))
            });
            let (record, status) = match converted {
                Ok(pair) => pair,
                Err(error) => {
                    // Treated as absent: the next fetch writes it anew.
                    warn!(%error, "ignoring an unreadable VirtualCloudPartner");
                    continue;
                }
            };
            let certificate = certificates
                .items
                .iter()
                .filter(|_| record.certificate.namespace == vc.namespace)
                .find(|c| c.metadata.name.as_deref() == Some(record.certificate.name.as_str()))
                .and_then(|c| {
                    let pem = c.data.as_ref()?.get(CERTIFICATE_KEY)?;
                    let version = c.metadata.resource_version.as_deref();
                    let parsed = reads.certificates.get_or_parse(
                        &record.certificate.name,
                        version,
                        || match Certificate::from_pem(pem) {
                            Ok(certificate) => Ok::<_, Infallible>(Some(certificate)),
                            Err(error) => {
                                warn!(partner = %record.name, %error, "stored certificate does not parse");
                                Ok(None)
                            }
                        },
                    );
                    parsed.unwrap_or_else(|never| match never {})
                });
            partners.push(StoredPartner {
                record,
                status,
                certificate,
            });
        }
        reads.partners.keep_only(
            &listed
                .items
                .iter()
                .filter_map(|o| o.metadata.name.as_deref())
                .collect(),
        );
        reads.certificates.keep_only(
            &certificates
                .items
                .iter()
                .filter_map(|c| c.metadata.name.as_deref())
                .collect(),
        );
        Ok(partners)
    }

    /// LIST the VirtualCloudPartnerAdmissions of the namespace; keep those
    /// whose `spec.partner` is `<vc>-<party>`.
    async fn admissions(&self, vc: &VcKey) -> Result<Vec<Admission>, ClusterError> {
        let listed = self
            .api::<VirtualCloudPartnerAdmission>(vc)
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_error(format!("list admissions in {}", vc.namespace), &e))?;
        Ok(listed
            .items
            .iter()
            .filter_map(|a| match a.to_admission(&vc.name) {
                Ok(admission) => Some(admission),
                Err(ConversionError::OtherVirtualCloud { .. }) => None,
                Err(error) => {
                    warn!(%error, "ignoring an unreadable VirtualCloudPartnerAdmission");
                    None
                }
            })
            .collect())
    }

    /// GET the MAC key Secret's metadata only (its data is never read).
    async fn mac_key_shares_exist(&self, vc: &VcKey) -> Result<bool, ClusterError> {
        self.api::<Secret>(vc)
            .get_metadata_opt(MAC_KEY_SECRET)
            .await
            .map(|m| m.is_some())
            .map_err(|e| kube_error(format!("read Secret {}/{MAC_KEY_SECRET}", vc.namespace), &e))
    }

    /// POST the MAC key Secret; 409 AlreadyExists leaves the existing one untouched.
    async fn create_mac_key_shares(
        &self,
        vc: &VcKey,
        shares: &MacKeyShares,
    ) -> Result<CreateOutcome, ClusterError> {
        let secret = objects::mac_key_secret(vc, shares);
        match self
            .api::<Secret>(vc)
            .create(&PostParams::default(), &secret)
            .await
        {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                debug!("MAC key share Secret exists; left untouched");
                Ok(CreateOutcome::AlreadyExisted)
            }
            // The request carried the shares: report only the status code
            // and reason, never the server's message, which could echo them.
            Err(kube::Error::Api(status)) => Err(ClusterError {
                operation: format!("create Secret {}/{MAC_KEY_SECRET}", vc.namespace),
                message: format!("API server answered {} {}", status.code, status.reason),
                transient: matches!(status.code, 429 | 500..),
            }),
            Err(_) => Err(ClusterError {
                operation: format!("create Secret {}/{MAC_KEY_SECRET}", vc.namespace),
                message: "the request did not complete".to_owned(),
                transient: true,
            }),
        }
    }

    /// GET `cs-vcp-config` and read the formation from its annotation.
    async fn configuration(&self, vc: &VcKey) -> Result<Option<Formation>, ClusterError> {
        let Some(map) = self.config_map(vc, VCP_CONFIG_MAP).await? else {
            return Ok(None);
        };
        let Some(json) = map
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(FORMATION_ANNOTATION))
        else {
            return Ok(None);
        };
        match serde_json::from_str(json) {
            Ok(formation) => Ok(Some(formation)),
            Err(error) => {
                warn!(%error, "the recorded formation does not parse; treating the configuration as unwritten");
                Ok(None)
            }
        }
    }

    /// LIST the configuration ConfigMaps; APPLY `io.carbynestack.engine.params`
    /// and the settings ConfigMap unless already applied, and the TLS Secret
    /// ([`super::lifecycle`], every write tried, failures reported together);
    /// then `cs-vcp-config` with the formation annotation (written last: it
    /// marks the configuration done).
    async fn write_configuration(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), ClusterError> {
        let owner = self.owner(vc).await?;
        let engine = objects::config_map(
            ENGINE_PARAMS_CONFIG_MAP,
            vc,
            COMPONENT_CONFIGURATION,
            &owner,
            formation.engine_params(),
        );
        self.write_carbyne_stack(vc, formation, &owner, &engine)
            .await?;
        let json = serde_json::to_string(formation).map_err(|e| ClusterError {
            operation: format!("record the formation of {}", vc_name(vc)),
            message: e.to_string(),
            transient: false,
        })?;
        let mut vcp = objects::config_map(
            VCP_CONFIG_MAP,
            vc,
            COMPONENT_CONFIGURATION,
            &owner,
            formation.vcp_config(),
        );
        vcp.metadata.annotations = Some(BTreeMap::from([(FORMATION_ANNOTATION.to_owned(), json)]));
        self.apply_config_map(vc, &vcp).await
    }

    /// GET the services record, then each recorded object (readiness).
    async fn services(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError> {
        self.applied_services(vc).await
    }

    /// GET the services record; APPLY each service; DELETE stale ones; APPLY the record.
    async fn create_services(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError> {
        self.apply_services(vc, formation).await
    }

    /// GET the gateways record.
    async fn gateways(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError> {
        self.applied_gateways(vc).await
    }

    /// GET the gateways record; APPLY each Istio object; DELETE stale ones; APPLY the record.
    async fn deploy_gateways(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError> {
        self.apply_gateways(vc, formation).await
    }

    /// GET `<vc>-partner-document`; remembers its sequence number.
    async fn published_document(&self, vc: &VcKey) -> Result<Option<DocumentBody>, ClusterError> {
        let name = document_config_map_name(&vc.name);
        let Some(map) = self.config_map(vc, &name).await? else {
            self.set_sequence(vc, 0);
            return Ok(None);
        };
        let data = map.data.unwrap_or_default();
        let sequence = data
            .get(SEQUENCE_KEY)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let document = data
            .get(DOCUMENT_KEY)
            .and_then(|json| serde_json::from_str::<PartnerDocument>(json).ok());
        self.set_sequence(
            vc,
            sequence.max(document.as_ref().map_or(0, |d| d.sequence)),
        );
        Ok(document.map(|d| d.body))
    }

    /// Signs with the next sequence number and APPLYs
    /// `<vc>-partner-document`. A number beyond the status's reservation
    /// (after a lost document; [`spalding_core::sequence`]) is first
    /// reserved with a merge PATCH of the VC status.
    async fn publish_document(&self, vc: &VcKey, body: &DocumentBody) -> Result<(), ClusterError> {
        let known = self.known().get(vc).and_then(|k| k.sequence);
        if known.is_none() {
            self.published_document(vc).await?;
        }
        let next = self.sequencing(vc).next();
        if let Some(reserve) = next.reserve {
            self.reserve_sequence(vc, reserve).await?;
        }
        let sequence = next.sequence;
        let failed = |message: String| ClusterError {
            operation: format!("publish the partner document of {}", vc_name(vc)),
            message,
            transient: false,
        };
        let document = self
            .signer
            .sign(body, sequence)
            .map_err(|e| failed(format!("signing failed: {e}")))?;
        let json = serde_json::to_string(&document).map_err(|e| failed(e.to_string()))?;
        let owner = self.owner(vc).await?;
        let map = objects::config_map(
            &document_config_map_name(&vc.name),
            vc,
            COMPONENT_DOCUMENT,
            &owner,
            BTreeMap::from([
                (DOCUMENT_KEY.to_owned(), json),
                (SEQUENCE_KEY.to_owned(), sequence.to_string()),
            ]),
        );
        self.apply_config_map(vc, &map).await?;
        self.set_sequence(vc, sequence);
        Ok(())
    }

    /// APPLY `<vc>-<partner>-cert`.
    async fn store_certificate(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        certificate: &Certificate,
    ) -> Result<(), ClusterError> {
        let owner = self.owner(vc).await?;
        let name = certificate_config_map_name(&vc.name, partner);
        let map = objects::certificate_config_map(&name, vc, partner, &owner, certificate.pem());
        self.apply_config_map(vc, &map).await
    }

    /// APPLY the VirtualCloudPartner `<vc>-<partner>`.
    async fn upsert_partner(&self, vc: &VcKey, record: &PartnerRecord) -> Result<(), ClusterError> {
        let owner = self.owner(vc).await?;
        let object = objects::partner(vc, record, &owner);
        let name = partner_object_name(&vc.name, &record.name);
        self.api::<VirtualCloudPartner>(vc)
            .patch(&name, &apply(), &Patch::Apply(&object))
            .await
            .map_err(|e| {
                kube_error(
                    format!("apply VirtualCloudPartner {}/{name}", vc.namespace),
                    &e,
                )
            })?;
        Ok(())
    }

    /// APPLY the VirtualCloudPartner's status subresource.
    async fn update_partner_status(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        status: &PartnerStatus,
    ) -> Result<(), ClusterError> {
        let name = partner_object_name(&vc.name, partner);
        let body = objects::status_apply::<VirtualCloudPartner, _>(
            &VirtualCloudPartnerStatus::from(status),
        );
        self.api::<VirtualCloudPartner>(vc)
            .patch_status(&name, &apply(), &Patch::Apply(&body))
            .await
            .map_err(|e| {
                kube_error(
                    format!(
                        "apply status of VirtualCloudPartner {}/{name}",
                        vc.namespace
                    ),
                    &e,
                )
            })?;
        Ok(())
    }

    /// DELETE the VirtualCloudPartner, then its certificate ConfigMap.
    async fn remove_partner(&self, vc: &VcKey, partner: &PartyName) -> Result<(), ClusterError> {
        self.delete_if_present::<VirtualCloudPartner>(vc, &partner_object_name(&vc.name, partner))
            .await?;
        self.delete_if_present::<ConfigMap>(vc, &certificate_config_map_name(&vc.name, partner))
            .await
    }

    /// APPLY the admission's status subresource with the bound fingerprint.
    async fn bind_admission(
        &self,
        vc: &VcKey,
        admission: &str,
        fingerprint: &Fingerprint,
    ) -> Result<(), ClusterError> {
        let body = objects::status_apply::<VirtualCloudPartnerAdmission, _>(
            &VirtualCloudPartnerAdmissionStatus {
                fingerprint: Some(fingerprint.as_str().to_owned()),
            },
        );
        self.api::<VirtualCloudPartnerAdmission>(vc)
            .patch_status(admission, &apply(), &Patch::Apply(&body))
            .await
            .map_err(|e| kube_error(format!("bind admission {}/{admission}", vc.namespace), &e))?;
        Ok(())
    }

    /// POST an Event (events.k8s.io/v1) through a fresh kube Recorder (so
    /// Events of one reason with different messages stay apart); nothing
    /// when the same Event (type, reason, message) was recorded for this VC
    /// in the last ten minutes.
    async fn record_event(&self, vc: &VcKey, event: &Event) -> Result<(), ClusterError> {
        let reference = self.reference(vc).await?;
        if self.recorded_lately(vc, event) {
            debug!(
                reason = event.reason,
                "the same Event was recorded lately; not again"
            );
            return Ok(());
        }
        let kube_event = KubeEvent {
            type_: match event.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: event.reason.to_owned(),
            note: Some(event.message.clone()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let published = recorder.publish(&kube_event, &reference).await;
        if published.is_err() {
            self.forget_event(vc, event);
        }
        published.map_err(|e| kube_error(format!("record an event on {}", vc_name(vc)), &e))
    }

    /// APPLY the VirtualCloud's status subresource.
    async fn update_status(
        &self,
        vc: &VcKey,
        status: &VirtualCloudStatus,
    ) -> Result<(), ClusterError> {
        let mut status = CrdStatus::from(status);
        status.document_sequence = self.sequencing(vc).carried();
        let body = objects::status_apply::<VirtualCloud, _>(&status);
        self.api::<VirtualCloud>(vc)
            .patch_status(&vc.name, &apply(), &Patch::Apply(&body))
            .await
            .map_err(|e| {
                kube_error(format!("apply status of virtual cloud {}", vc_name(vc)), &e)
            })?;
        Ok(())
    }
}

//! What the core renders, applied: the Carbyne Stack settings ConfigMap and
//! the TLS Secret (written with the configuration), the foundation services
//! and the Istio objects (as dynamic objects through kube's
//! [`DynamicObject`]), each with the VC as owner and the managed-by label.
//!
//! The Istio objects applied here are the services' secure gateway and its
//! VirtualServices (`ready`); the MPC port's exposure and the egress to
//! partners come with key generation ([`crate::launcher`]).
//!
//! Services and gateways are recorded in a ConfigMap each
//! (`<vc>-services`, `<vc>-gateways`) whose annotation
//! [`FORMATION_ANNOTATION`] holds the formation they were applied for and
//! whose `objects.json` lists them with their readiness rules; objects of an
//! earlier record that the new rendering no longer has are deleted. Readiness
//! of services is read from each object by its rule; gateways are ready once
//! applied.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::{Deserialize, Serialize};
use spalding_core::configuration::Formation;
use spalding_core::ports::{Applied, ClusterError, VcKey};
use spalding_core::render::carbyne::{settings_data, tls_secret_data};
use spalding_core::render::istio::render_gateways;
use spalding_core::render::templates::render_services;
use spalding_core::render::{ReadinessRule, RenderError, RenderSettings, RenderedObject};
use tracing::warn;

use super::converge::{Desired, Failures, Live, apply_missing, delete};
use super::objects::{self, COMPONENT_CONFIGURATION};
use super::{FIELD_MANAGER, FORMATION_ANNOTATION, KubeCluster, kube_error, vc_name};
use crate::identity::VcpIdentity;

/// [`super::COMPONENT_LABEL`] of the foundation services and their record.
pub const COMPONENT_SERVICES: &str = "services";
/// [`super::COMPONENT_LABEL`] of the Istio objects and their record.
pub const COMPONENT_GATEWAYS: &str = "gateways";
/// [`super::COMPONENT_LABEL`] of the TLS Secret.
pub const COMPONENT_TLS: &str = "tls";
/// Key of the applied objects' list in a record ConfigMap.
pub const OBJECTS_KEY: &str = "objects.json";

/// Name of the ConfigMap recording what was applied for `component`.
pub fn record_name(vc: &str, component: &str) -> String {
    format!("{vc}-{component}")
}

/// The rendering settings and the key the TLS Secret needs.
#[derive(Default)]
pub(super) struct Lifecycle {
    settings: RenderSettings,
    /// `tls.key` (PEM). Secret: never logged.
    tls_key: Option<String>,
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("settings", &self.settings)
            .field("tls_key", &self.tls_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One applied object, as listed in a record (also read by the simulation
/// driver, which readies exactly these objects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listed {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) plural: String,
    pub(crate) name: String,
    pub(crate) readiness: ReadinessRule,
}

impl From<&RenderedObject> for Listed {
    fn from(o: &RenderedObject) -> Self {
        Self {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            plural: o.plural.clone(),
            name: o.name.clone(),
            readiness: o.readiness.clone(),
        }
    }
}

/// The API resource of a rendered object, for kube's [`DynamicObject`].
pub(crate) fn api_resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

impl Listed {
    fn resource(&self) -> ApiResource {
        api_resource(&self.api_version, &self.kind, &self.plural)
    }

    fn same_object(&self, other: &Listed) -> bool {
        self.api_version == other.api_version && self.kind == other.kind && self.name == other.name
    }
}

fn failed(operation: String, error: impl ToString) -> ClusterError {
    ClusterError {
        operation,
        message: error.to_string(),
        transient: false,
    }
}

fn render_error(vc: &VcKey, error: &RenderError) -> ClusterError {
    failed(format!("render the objects of {}", vc_name(vc)), error)
}

impl KubeCluster {
    /// Renders with `settings`, and writes `identity`'s certificate and key
    /// into the TLS Secret.
    pub fn with_lifecycle(mut self, settings: RenderSettings, identity: &VcpIdentity) -> Self {
        self.lifecycle = std::sync::Arc::new(Lifecycle {
            settings,
            tls_key: Some(identity.pems().tls_key),
        });
        self
    }

    /// The rendering settings in use.
    pub fn render_settings(&self) -> &RenderSettings {
        &self.lifecycle.settings
    }

    /// LIST the configuration ConfigMaps; APPLY `engine` and the settings
    /// ConfigMap unless they already hold what is rendered; APPLY the TLS
    /// Secret. Every write is tried; the failures come back as one error.
    pub(super) async fn write_carbyne_stack(
        &self,
        vc: &VcKey,
        formation: &Formation,
        owner: &OwnerReference,
        engine: &ConfigMap,
    ) -> Result<(), ClusterError> {
        let settings = &self.lifecycle.settings;
        let data = settings_data(formation, settings).map_err(|e| render_error(vc, &e))?;
        let map = objects::config_map(
            &settings.settings_config_map,
            vc,
            COMPONENT_CONFIGURATION,
            owner,
            data,
        );
        let Some(key) = self.lifecycle.tls_key.as_deref() else {
            return Err(failed(
                format!("apply Secret {}/{}", vc.namespace, settings.tls_secret),
                "no VCP identity configured for the TLS Secret (KubeCluster::with_lifecycle)",
            ));
        };
        let desired = [engine, &map]
            .into_iter()
            .map(|m| {
                Ok(Desired {
                    resource: ApiResource::erase::<ConfigMap>(&()),
                    name: m.metadata.name.clone().unwrap_or_default(),
                    body: serde_json::to_value(m)
                        .map_err(|e| failed(format!("build ConfigMap {}", vc_name(vc)), e))?,
                })
            })
            .collect::<Result<Vec<_>, ClusterError>>()?;
        let selector = objects::selector(&vc.name, COMPONENT_CONFIGURATION);
        let live = Live::list(
            &self.client,
            &vc.namespace,
            &selector,
            &[ApiResource::erase::<ConfigMap>(&())],
        )
        .await;
        let mut failures = Failures::default();
        apply_missing(&self.client, &vc.namespace, &live, &desired, &mut failures).await;
        failures.record(apply_tls_secret(&self.client, vc, formation, settings, key, owner).await);
        failures.into_result(format!("write the configuration of {}", vc_name(vc)))
    }

    /// The foundation services, ready when every object's rule holds.
    pub(super) async fn applied_services(
        &self,
        vc: &VcKey,
    ) -> Result<Option<Applied>, ClusterError> {
        let Some((formation, listed)) = self.read_record(vc, COMPONENT_SERVICES).await? else {
            return Ok(None);
        };
        let mut ready = true;
        for object in &listed {
            let found = self
                .dynamic(vc, object)
                .get_opt(&object.name)
                .await
                .map_err(|e| {
                    kube_error(
                        format!("read {} {}/{}", object.kind, vc.namespace, object.name),
                        &e,
                    )
                })?;
            let value = found.and_then(|o| serde_json::to_value(o).ok());
            ready &= value.is_some_and(|v| object.readiness.is_ready(&v));
        }
        Ok(Some(Applied { formation, ready }))
    }

    /// The Istio objects, ready once applied.
    pub(super) async fn applied_gateways(
        &self,
        vc: &VcKey,
    ) -> Result<Option<Applied>, ClusterError> {
        Ok(self
            .read_record(vc, COMPONENT_GATEWAYS)
            .await?
            .map(|(formation, _)| Applied {
                formation,
                ready: true,
            }))
    }

    /// APPLY every rendered foundation service, then the record.
    pub(super) async fn apply_services(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), ClusterError> {
        let rendered = render_services(&vc.name, formation, &self.lifecycle.settings)
            .map_err(|e| render_error(vc, &e))?;
        self.apply_all(vc, formation, COMPONENT_SERVICES, &rendered)
            .await
    }

    /// APPLY every rendered Istio object, then the record.
    pub(super) async fn apply_gateways(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), ClusterError> {
        let rendered = render_gateways(&self.lifecycle.settings);
        self.apply_all(vc, formation, COMPONENT_GATEWAYS, &rendered)
            .await
    }

    fn dynamic(&self, vc: &VcKey, object: &Listed) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &vc.namespace, &object.resource())
    }

    /// LIST the component's objects; APPLY every rendered object the API
    /// server does not already hold as rendered, DELETE those of the
    /// previous record no longer rendered, trying every write; when all
    /// succeeded, APPLY the record.
    async fn apply_all(
        &self,
        vc: &VcKey,
        formation: &Formation,
        component: &str,
        rendered: &[RenderedObject],
    ) -> Result<(), ClusterError> {
        let owner = self.owner(vc).await?;
        let previous = self
            .read_record(vc, component)
            .await?
            .map(|(_, listed)| listed)
            .unwrap_or_default();
        let desired = rendered
            .iter()
            .map(|object| {
                let mut body = object.body.clone();
                body["metadata"] = serde_json::to_value(objects::owned_meta(
                    &object.name,
                    vc,
                    objects::labels(&vc.name, component),
                    &owner,
                ))
                .map_err(|e| failed(format!("build {} {}", object.kind, object.name), e))?;
                Ok(Desired {
                    resource: Listed::from(object).resource(),
                    name: object.name.clone(),
                    body,
                })
            })
            .collect::<Result<Vec<_>, ClusterError>>()?;
        let listed: Vec<Listed> = rendered.iter().map(Listed::from).collect();
        let stale: Vec<&Listed> = previous
            .iter()
            .filter(|p| !listed.iter().any(|l| l.same_object(p)))
            .collect();
        let stale_resources: Vec<ApiResource> = stale.iter().map(|s| s.resource()).collect();
        let live = Live::list(
            &self.client,
            &vc.namespace,
            &objects::selector(&vc.name, component),
            &desired
                .iter()
                .map(|d| d.resource.clone())
                .chain(stale_resources.iter().cloned())
                .collect::<Vec<_>>(),
        )
        .await;
        let mut failures = Failures::default();
        apply_missing(&self.client, &vc.namespace, &live, &desired, &mut failures).await;
        for (object, resource) in stale.iter().zip(&stale_resources) {
            let gone = live
                .names(resource)
                .is_some_and(|names| !names.contains(&object.name));
            if !gone {
                delete(
                    &self.client,
                    &vc.namespace,
                    resource,
                    &object.name,
                    &mut failures,
                )
                .await;
            }
        }
        failures.into_result(format!("apply the {component} of {}", vc_name(vc)))?;
        let recording = || format!("record the {component} of {}", vc_name(vc));
        let objects_json = serde_json::to_string(&listed).map_err(|e| failed(recording(), e))?;
        let formation_json =
            serde_json::to_string(formation).map_err(|e| failed(recording(), e))?;
        let mut record = objects::config_map(
            &record_name(&vc.name, component),
            vc,
            component,
            &owner,
            BTreeMap::from([(OBJECTS_KEY.to_owned(), objects_json)]),
        );
        record.metadata.annotations = Some(BTreeMap::from([(
            FORMATION_ANNOTATION.to_owned(),
            formation_json,
        )]));
        self.apply_config_map(vc, &record).await
    }

    async fn read_record(
        &self,
        vc: &VcKey,
        component: &str,
    ) -> Result<Option<(Formation, Vec<Listed>)>, ClusterError> {
        let name = record_name(&vc.name, component);
        let Some(map) = self.config_map(vc, &name).await? else {
            return Ok(None);
        };
        let formation = map
            .annotations()
            .get(FORMATION_ANNOTATION)
            .and_then(|json| serde_json::from_str::<Formation>(json).ok());
        let listed = map
            .data
            .as_ref()
            .and_then(|d| d.get(OBJECTS_KEY))
            .and_then(|json| serde_json::from_str::<Vec<Listed>>(json).ok());
        match (formation, listed) {
            (Some(formation), Some(listed)) => Ok(Some((formation, listed))),
            _ => {
                warn!(record = %name, "the record of applied objects does not parse; applying again");
                Ok(None)
            }
        }
    }
}

/// GET the TLS Secret, and unless it already holds the same content, APPLY
/// it (`tls.crt`, `tls.key` = `key`, `cacert`) for `formation`: written with
/// the configuration, and by the launcher before key generation, whose
/// Istio objects name it as `credentialName`.
pub(crate) async fn apply_tls_secret(
    client: &kube::Client,
    vc: &VcKey,
    formation: &Formation,
    settings: &RenderSettings,
    key: &str,
    owner: &OwnerReference,
) -> Result<(), ClusterError> {
    let name = &settings.tls_secret;
    let operation = format!("apply Secret {}/{name}", vc.namespace);
    let data = tls_secret_data(formation, key).map_err(|e| render_error(vc, &e))?;
    let secret = Secret {
        metadata: objects::owned_meta(name, vc, objects::labels(&vc.name, COMPONENT_TLS), owner),
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.into_inner()
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    };
    let api = Api::<Secret>::namespaced(client.clone(), &vc.namespace);
    // Written before key generation and again with the configuration,
    // usually with the same content: an apply that changes nothing is
    // still a write, so read first and skip it.
    match api.get_opt(name).await {
        Ok(Some(stored)) if holds(&stored, &secret) => return Ok(()),
        Ok(_) => {}
        // The request carried nothing secret, but its answer could: report
        // only the status, as below.
        Err(kube::Error::Api(status)) => {
            return Err(ClusterError {
                operation: format!("read Secret {}/{name}", vc.namespace),
                message: format!("API server answered {} {}", status.code, status.reason),
                transient: matches!(status.code, 409 | 429 | 500..),
            });
        }
        Err(_) => {
            return Err(ClusterError {
                operation: format!("read Secret {}/{name}", vc.namespace),
                message: "the request did not complete".to_owned(),
                transient: true,
            });
        }
    }
    match api.patch(name, &apply(), &Patch::Apply(&secret)).await {
        Ok(_) => Ok(()),
        // The request carried the private key: report only the status.
        Err(kube::Error::Api(status)) => Err(ClusterError {
            operation,
            message: format!("API server answered {} {}", status.code, status.reason),
            transient: matches!(status.code, 409 | 429 | 500..),
        }),
        Err(_) => Err(ClusterError {
            operation,
            message: "the request did not complete".to_owned(),
            transient: true,
        }),
    }
}

/// Whether `stored` already holds what applying `wanted` would write: the
/// same type and data, our labels and our owner reference.
fn holds(stored: &Secret, wanted: &Secret) -> bool {
    let contains = |have: Option<&BTreeMap<String, String>>,
                    want: Option<&BTreeMap<String, String>>| {
        want.into_iter()
            .flatten()
            .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
    };
    let owned = wanted.metadata.owner_references.iter().flatten().all(|w| {
        stored
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|s| s.uid == w.uid && s.controller == w.controller)
    });
    stored.type_ == wanted.type_
        && stored.data == wanted.data
        && contains(
            stored.metadata.labels.as_ref(),
            wanted.metadata.labels.as_ref(),
        )
        && owned
}

fn apply() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

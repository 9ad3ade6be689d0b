//! [`KubeLauncher`]: the core's [`MpcLauncher`] port as a Kubernetes Job.
//!
//! A launch creates (create-only) the PersistentVolumeClaim for HE key
//! material — key material: labelled as such, no owner reference, kept when
//! the VC is deleted — applies the ConfigMap `<vc>-players` with MP-SPDZ's
//! `players` file, the Service `<vc>-mpc` in front of this party's MPC
//! port, the TLS Secret its Istio objects name (when given the VCP
//! identity, [`KubeLauncher::with_identity`]) and the core's Istio exposure
//! of the port ([`render_mpc`]: an mTLS `MUTUAL` Gateway and a TCP
//! VirtualService, per partner a ServiceEntry and a `MUTUAL`
//! DestinationRule; egress objects of partners no longer in the formation
//! are deleted), and creates the Job `<vc>-keygen`. The Job mounts the MAC
//! key Secret (the shares never appear in a spec), the players file and the
//! PVC, runs the core's [`keygen_script`] (which retries while partners
//! start and finally calls Istio's `quitquitquit` so the sidecar lets the
//! pod complete) and has a backoff limit. The formation it was launched
//! for is recorded in the Job's annotation [`FORMATION_ANNOTATION`]: a
//! launch for another player set finds the Job there (409 on create),
//! deletes it and creates it anew.
//! Phases are read from the Job status.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecretVolumeSource, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ApiResource, DeleteParams, PostParams, PropagationPolicy};
use kube::{Api, Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use spalding_core::configuration::{Formation, MAC_KEY_SECRET};
use spalding_core::ports::{
    ClusterError, KeyGeneration, KeyGenerationPhase, LauncherError, MpcLauncher, VcKey,
};
use spalding_core::render::istio::{ISTIO_API_VERSION, mpc_name, mpc_port, render_mpc};
use spalding_core::render::mpspdz::{KeyGenSettings, PLAYER_DATA, keygen_script, players_file};
use spalding_core::render::templates::COWGEAR_IMAGE;
use spalding_core::render::{RenderSettings, RenderedObject};

use crate::cluster::converge::{Desired, Failures, Live, apply_missing, delete, failure};
use crate::cluster::lifecycle::{api_resource, apply_tls_secret};
use crate::cluster::objects::{labels, owned_meta, selector};
use crate::cluster::{FORMATION_ANNOTATION, KEY_MATERIAL_LABEL};
use crate::crd::VirtualCloud;
use crate::identity::VcpIdentity;

/// [`crate::cluster::COMPONENT_LABEL`] of the key generation objects.
pub const COMPONENT_KEY_GENERATION: &str = "key-generation";
/// Key of the players file in its ConfigMap.
pub const PLAYERS_KEY: &str = "players";
/// The per-partner egress kinds of the MPC exposure, with their plurals.
const EGRESS_KINDS: [(&str, &str); 2] = [
    ("ServiceEntry", "serviceentries"),
    ("DestinationRule", "destinationrules"),
];

/// Name of the key generation Job.
pub fn job_name(vc: &str) -> String {
    format!("{vc}-keygen")
}

/// Name of the players ConfigMap.
pub fn players_config_map_name(vc: &str) -> String {
    format!("{vc}-players")
}

/// Name of the Service exposing this party's MPC port (also the name of
/// its Istio Gateway and VirtualService).
pub fn mpc_service_name(vc: &str) -> String {
    mpc_name(vc)
}

/// How key generation runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LauncherSettings {
    /// The image with MP-SPDZ's offline program.
    pub image: String,
    /// The container command; the script is appended as its last argument.
    pub command: Vec<String>,
    /// Retries of the Job's pod.
    pub backoff_limit: i32,
    /// Size of the HE key volume.
    pub storage_size: String,
    /// Storage class of the HE key volume (the cluster default if unset).
    pub storage_class: Option<String>,
    /// Access mode of the HE key volume.
    pub access_mode: String,
    /// What the container runs.
    pub keygen: KeyGenSettings,
}

impl Default for LauncherSettings {
    fn default() -> Self {
        Self {
            image: COWGEAR_IMAGE.to_owned(),
            command: vec!["/bin/sh".to_owned(), "-c".to_owned()],
            backoff_limit: 4,
            storage_size: "1Gi".to_owned(),
            storage_class: None,
            access_mode: "ReadWriteOnce".to_owned(),
            keygen: KeyGenSettings::default(),
        }
    }
}

/// MP-SPDZ key generation as a Kubernetes Job.
#[derive(Clone)]
pub struct KubeLauncher {
    client: Client,
    render: RenderSettings,
    settings: LauncherSettings,
    /// `tls.key` of the TLS Secret (PEM). Secret: never logged.
    tls_key: Option<String>,
}

impl std::fmt::Debug for KubeLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeLauncher")
            .field("settings", &self.settings)
            .field("tls_key", &self.tls_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn error(operation: String, e: &kube::Error) -> LauncherError {
    LauncherError(format!("{operation}: {e}"))
}

fn is(code: u16, e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

/// Where a Job stands, from its status.
pub fn phase(status: Option<&JobStatus>) -> KeyGenerationPhase {
    let Some(status) = status else {
        return KeyGenerationPhase::Pending;
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let holds = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if let Some(failed) = holds("Failed") {
        let reason = [failed.reason.as_deref(), failed.message.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        return KeyGenerationPhase::Failed {
            reason: if reason.is_empty() {
                "the Job failed".to_owned()
            } else {
                reason
            },
        };
    }
    if holds("Complete").is_some() || status.succeeded.unwrap_or(0) > 0 {
        return KeyGenerationPhase::Succeeded;
    }
    if status.active.unwrap_or(0) > 0 {
        return KeyGenerationPhase::Running;
    }
    KeyGenerationPhase::Pending
}

impl KubeLauncher {
    /// A launcher rendering with `render` and running as `settings` say.
    pub fn new(client: Client, render: RenderSettings, settings: LauncherSettings) -> Self {
        Self {
            client,
            render,
            settings,
            tls_key: None,
        }
    }

    /// Writes the TLS Secret with `identity`'s certificate and key before
    /// each launch: the Istio Gateway and DestinationRules of key
    /// generation name it as `credentialName`, and the configuration that
    /// also writes it comes only after key generation. Without an identity
    /// the Secret must already exist.
    pub fn with_identity(mut self, identity: &VcpIdentity) -> Self {
        self.tls_key = Some(identity.pems().tls_key);
        self
    }

    /// The HE key volume claim: key material, no owner reference.
    pub fn volume_claim(&self, vc: &VcKey) -> PersistentVolumeClaim {
        let mut labels = labels(&vc.name, COMPONENT_KEY_GENERATION);
        labels.insert(KEY_MATERIAL_LABEL.to_owned(), "true".to_owned());
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(self.render.he_key_claim.clone()),
                namespace: Some(vc.namespace.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![self.settings.access_mode.clone()]),
                storage_class_name: self.settings.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(self.settings.storage_size.clone()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }

    /// The players ConfigMap.
    pub fn players_config_map(
        &self,
        vc: &VcKey,
        formation: &Formation,
        owner: &OwnerReference,
    ) -> ConfigMap {
        ConfigMap {
            metadata: owned_meta(
                &players_config_map_name(&vc.name),
                vc,
                labels(&vc.name, COMPONENT_KEY_GENERATION),
                owner,
            ),
            data: Some(BTreeMap::from([(
                PLAYERS_KEY.to_owned(),
                players_file(formation, &self.render),
            )])),
            ..ConfigMap::default()
        }
    }

    /// The Service selecting the Job's pod on this party's MPC port.
    pub fn mpc_service(
        &self,
        vc: &VcKey,
        formation: &Formation,
        owner: &OwnerReference,
    ) -> Service {
        let labels = labels(&vc.name, COMPONENT_KEY_GENERATION);
        let port = i32::try_from(mpc_port(&self.render, formation.player_id)).unwrap_or(i32::MAX);
        Service {
            metadata: owned_meta(&mpc_service_name(&vc.name), vc, labels.clone(), owner),
            spec: Some(ServiceSpec {
                selector: Some(labels),
                ports: Some(vec![ServicePort {
                    name: Some("tcp-mpc".to_owned()),
                    port,
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// The Istio exposure of the MPC port ([`render_mpc`]), each object
    /// with this VC's metadata: owner, namespace and labels.
    pub fn mpc_exposure(
        &self,
        vc: &VcKey,
        formation: &Formation,
        owner: &OwnerReference,
    ) -> Result<Vec<RenderedObject>, LauncherError> {
        render_mpc(&vc.name, formation, &self.render)
            .into_iter()
            .map(|mut object| {
                let labels = labels(&vc.name, COMPONENT_KEY_GENERATION);
                object.body["metadata"] =
                    serde_json::to_value(owned_meta(&object.name, vc, labels, owner)).map_err(
                        |e| LauncherError(format!("build {} {}: {e}", object.kind, object.name)),
                    )?;
                Ok(object)
            })
            .collect()
    }

    /// The objects a launch applies: the players ConfigMap, the MPC Service
    /// and the Istio exposure, with their resources for [`Live`].
    fn launch_objects(
        &self,
        vc: &VcKey,
        formation: &Formation,
        owner: &OwnerReference,
    ) -> Result<Vec<Desired>, LauncherError> {
        let build = |kind: &str, e: serde_json::Error| LauncherError(format!("build {kind}: {e}"));
        let mut desired = vec![
            Desired {
                resource: ApiResource::erase::<ConfigMap>(&()),
                name: players_config_map_name(&vc.name),
                body: serde_json::to_value(self.players_config_map(vc, formation, owner))
                    .map_err(|e| build("ConfigMap", e))?,
            },
            Desired {
                resource: ApiResource::erase::<Service>(&()),
                name: mpc_service_name(&vc.name),
                body: serde_json::to_value(self.mpc_service(vc, formation, owner))
                    .map_err(|e| build("Service", e))?,
            },
        ];
        desired.extend(
            self.mpc_exposure(vc, formation, owner)?
                .into_iter()
                .map(|object| Desired {
                    resource: api_resource(ISTIO_API_VERSION, &object.kind, &object.plural),
                    name: object.name,
                    body: object.body,
                }),
        );
        Ok(desired)
    }

    /// The key generation Job for `formation`.
    pub fn job(
        &self,
        vc: &VcKey,
        formation: &Formation,
        owner: &OwnerReference,
    ) -> Result<Job, LauncherError> {
        let keygen = &self.settings.keygen;
        let labels = labels(&vc.name, COMPONENT_KEY_GENERATION);
        let mut metadata = owned_meta(&job_name(&vc.name), vc, labels.clone(), owner);
        let recorded = serde_json::to_string(formation)
            .map_err(|e| LauncherError(format!("record the formation: {e}")))?;
        metadata.annotations = Some(BTreeMap::from([(
            FORMATION_ANNOTATION.to_owned(),
            recorded,
        )]));
        let players_dir = keygen
            .players_file
            .rsplit_once('/')
            .map_or("/", |(dir, _)| dir)
            .to_owned();
        let mount = |name: &str, path: String, read_only| VolumeMount {
            name: name.to_owned(),
            mount_path: path,
            read_only: Some(read_only),
            ..VolumeMount::default()
        };
        let mut command = self.settings.command.clone();
        command.push(keygen_script(formation, &self.render, keygen));
        Ok(Job {
            metadata,
            spec: Some(JobSpec {
                backoff_limit: Some(self.settings.backoff_limit),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".to_owned()),
                        containers: vec![Container {
                            name: "keygen".to_owned(),
                            image: Some(self.settings.image.clone()),
                            command: Some(command),
                            volume_mounts: Some(vec![
                                mount("mac-key", keygen.mac_key_dir.clone(), true),
                                mount("players", players_dir, true),
                                mount(
                                    "he-keys",
                                    format!("{}/{PLAYER_DATA}", keygen.work_dir),
                                    false,
                                ),
                            ]),
                            ..Container::default()
                        }],
                        volumes: Some(vec![
                            Volume {
                                name: "mac-key".to_owned(),
                                secret: Some(SecretVolumeSource {
                                    secret_name: Some(MAC_KEY_SECRET.to_owned()),
                                    default_mode: Some(0o400),
                                    ..SecretVolumeSource::default()
                                }),
                                ..Volume::default()
                            },
                            Volume {
                                name: "players".to_owned(),
                                config_map: Some(ConfigMapVolumeSource {
                                    name: players_config_map_name(&vc.name),
                                    ..ConfigMapVolumeSource::default()
                                }),
                                ..Volume::default()
                            },
                            Volume {
                                name: "he-keys".to_owned(),
                                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                    claim_name: self.render.he_key_claim.clone(),
                                    read_only: Some(false),
                                }),
                                ..Volume::default()
                            },
                        ]),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        })
    }

    async fn owner(&self, vc: &VcKey) -> Result<OwnerReference, LauncherError> {
        let api: Api<VirtualCloud> = Api::namespaced(self.client.clone(), &vc.namespace);
        let object = api.get(&vc.name).await.map_err(|e| {
            error(
                format!("read virtual cloud {}/{}", vc.namespace, vc.name),
                &e,
            )
        })?;
        object.controller_owner_ref(&()).ok_or_else(|| {
            LauncherError(format!(
                "virtual cloud {}/{} has no uid",
                vc.namespace, vc.name
            ))
        })
    }
}

#[async_trait]
impl MpcLauncher for KubeLauncher {
    /// GET the Job; its annotation is the formation, its status the phase.
    async fn key_generation(&self, vc: &VcKey) -> Result<Option<KeyGeneration>, LauncherError> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &vc.namespace);
        let name = job_name(&vc.name);
        let Some(job) = api
            .get_opt(&name)
            .await
            .map_err(|e| error(format!("read Job {}/{name}", vc.namespace), &e))?
        else {
            return Ok(None);
        };
        // A Job without a readable formation counts as absent: it is replaced.
        let Some(formation) = job
            .annotations()
            .get(FORMATION_ANNOTATION)
            .and_then(|json| serde_json::from_str::<Formation>(json).ok())
        else {
            return Ok(None);
        };
        // A failed Job is terminal (its pods already retried up to the
        // backoff limit); deleting it is how an operator asks for another run.
        let phase = match phase(job.status.as_ref()) {
            KeyGenerationPhase::Failed { reason } => KeyGenerationPhase::Failed {
                reason: format!(
                    "{reason} (delete Job {}/{name} to run it again)",
                    vc.namespace
                ),
            },
            other => other,
        };
        Ok(Some(KeyGeneration { formation, phase }))
    }

    /// GET the VC (owner); POST the PVC (409 kept); LIST the objects of key
    /// generation per kind; APPLY the players ConfigMap, the MPC Service and
    /// the Istio exposure unless already applied as rendered, the TLS Secret
    /// (with an identity; read first, not applied when unchanged), and DELETE
    /// stale egress objects — every write tried, the failures reported
    /// together; then POST the Job, and only when one exists (of another
    /// formation) DELETE it and POST again.
    async fn launch_key_generation(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), LauncherError> {
        let ns = &vc.namespace;
        let owner = self.owner(vc).await?;
        let mut failures = Failures::default();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        failures.record(
            match claims
                .create(&PostParams::default(), &self.volume_claim(vc))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is(409, &e) => Ok(()),
                Err(e) => Err(failure(
                    format!(
                        "create PersistentVolumeClaim {ns}/{}",
                        self.render.he_key_claim
                    ),
                    &e,
                )),
            },
        );
        let desired = self.launch_objects(vc, formation, &owner)?;
        let egress: Vec<ApiResource> = EGRESS_KINDS
            .iter()
            .map(|(kind, plural)| api_resource(ISTIO_API_VERSION, kind, plural))
            .collect();
        let live = Live::list(
            &self.client,
            ns,
            &selector(&vc.name, COMPONENT_KEY_GENERATION),
            &desired
                .iter()
                .map(|d| d.resource.clone())
                .chain(egress.iter().cloned())
                .collect::<Vec<_>>(),
        )
        .await;
        // The players ConfigMap and the Service; the TLS Secret the Istio
        // objects name; then the Istio objects.
        let (local, istio) = desired.split_at(2.min(desired.len()));
        apply_missing(&self.client, ns, &live, local, &mut failures).await;
        match self.tls_key.as_deref() {
            Some(key) => failures.record(
                apply_tls_secret(&self.client, vc, formation, &self.render, key, &owner).await,
            ),
            None => tracing::warn!(
                vc = %vc.name,
                secret = %self.render.tls_secret,
                "no VCP identity given to the launcher: the TLS Secret the MPC gateway names must exist already"
            ),
        }
        apply_missing(&self.client, ns, &live, istio, &mut failures).await;
        // Egress objects of partners no longer in the formation.
        for resource in &egress {
            let Some(names) = live.names(resource) else {
                failures.record(Err(ClusterError {
                    operation: format!("list the {} of {ns}/{}", resource.plural, vc.name),
                    message: "the LIST failed; stale objects are deleted next time".to_owned(),
                    transient: true,
                }));
                continue;
            };
            for stale in names.iter().filter(|name| {
                !desired
                    .iter()
                    .any(|d| d.resource.kind == resource.kind && &d.name == *name)
            }) {
                delete(&self.client, ns, resource, stale, &mut failures).await;
            }
        }
        // The Job comes last, once everything it needs is in place.
        failures
            .into_result(format!("prepare the key generation of {ns}/{}", vc.name))
            .map_err(|e| LauncherError(e.to_string()))?;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let name = job_name(&vc.name);
        let job = self.job(vc, formation, &owner)?;
        // A launch is planned only when no Job of this formation exists, so
        // usually there is none: create first, and only on AlreadyExists
        // delete the Job of the other formation and create again (one
        // write in the usual case instead of a DELETE of nothing first).
        match jobs.create(&PostParams::default(), &job).await {
            Ok(_) => return Ok(()),
            Err(e) if is(409, &e) => {}
            Err(e) => return Err(error(format!("create Job {ns}/{name}"), &e)),
        }
        let delete = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match jobs.delete(&name, &delete).await {
            Ok(_) => {}
            Err(e) if is(404, &e) => {}
            Err(e) => return Err(error(format!("delete Job {ns}/{name}"), &e)),
        }
        jobs.create(&PostParams::default(), &job)
            .await
            .map_err(|e| error(format!("create Job {ns}/{name}"), &e))?;
        Ok(())
    }
}

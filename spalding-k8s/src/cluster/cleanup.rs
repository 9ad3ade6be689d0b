//! What happens when a VC is deleted: Spalding removes every object it
//! created for the VC (partners, certificate and document ConfigMaps, the
//! Carbyne Stack configuration) and keeps the key material — the MAC key
//! share Secret and the HE key PersistentVolumeClaim — unless the VC carries
//! the annotation [`DELETE_KEY_MATERIAL_ANNOTATION`]` = "true"`.

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use kube::api::{DeleteParams, ListParams};
use kube::{Resource, ResourceExt};
use spalding_core::ports::{ClusterError, VcKey};
use tracing::info;

use super::{
    KEY_MATERIAL_LABEL, KubeCluster, MANAGED_BY, MANAGED_BY_LABEL, VIRTUAL_CLOUD_LABEL, kube_error,
    vc_name,
};
use crate::crd::{VirtualCloud, VirtualCloudPartner};

/// The VC annotation asking Spalding to delete the key material with the VC.
pub const DELETE_KEY_MATERIAL_ANNOTATION: &str = "spalding.carbynestack.io/delete-key-material";

/// What a cleanup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Everything Spalding created is gone except the key material.
    KeptKeyMaterial,
    /// Everything Spalding created is gone, key material included.
    DeletedKeyMaterial,
}

impl KubeCluster {
    /// Deletes what Spalding created for `vc` (one DELETE collection per
    /// kind, by label), keeping the key material unless the VC asks.
    pub async fn clean_up(&self, vc: &VirtualCloud) -> Result<Cleanup, ClusterError> {
        let key = VcKey::new(vc.namespace().unwrap_or_default(), vc.name_any());
        let delete_keys = vc
            .annotations()
            .get(DELETE_KEY_MATERIAL_ANNOTATION)
            .is_some_and(|v| v == "true");
        let ours = format!(
            "{MANAGED_BY_LABEL}={MANAGED_BY},{VIRTUAL_CLOUD_LABEL}={}",
            key.name
        );
        let not_keys = format!("{ours},{KEY_MATERIAL_LABEL}!=true");
        let keys = format!("{ours},{KEY_MATERIAL_LABEL}=true");
        self.delete_collection::<VirtualCloudPartner>(&key, &ours)
            .await?;
        self.delete_collection::<ConfigMap>(&key, &not_keys).await?;
        self.delete_collection::<Secret>(&key, &not_keys).await?;
        let outcome = if delete_keys {
            self.delete_collection::<Secret>(&key, &keys).await?;
            self.delete_collection::<PersistentVolumeClaim>(&key, &keys)
                .await?;
            Cleanup::DeletedKeyMaterial
        } else {
            Cleanup::KeptKeyMaterial
        };
        info!(vc = %vc_name(&key), ?outcome, "cleaned up");
        self.forget(&key);
        Ok(outcome)
    }

    async fn delete_collection<K>(&self, vc: &VcKey, selector: &str) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>(vc)
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(selector),
            )
            .await
            .map_err(|e| {
                kube_error(
                    format!("delete the {} of {}", K::plural(&()), vc_name(vc)),
                    &e,
                )
            })?;
        Ok(())
    }
}

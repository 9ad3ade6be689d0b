//! The Kubernetes objects Spalding writes, built as values: labelled
//! ConfigMaps, the VirtualCloudPartner, the MAC key share Secret, and the
//! bodies of status applies. Pure functions, so tests can compare them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::Serialize;
use spalding_core::configuration::{MAC_KEY_SECRET, MAC_KEY_SHARE_2, MAC_KEY_SHARE_P};
use spalding_core::mac::MacKeyShares;
use spalding_core::name::PartyName;
use spalding_core::partner::{PartnerRecord, partner_object_name};
use spalding_core::ports::VcKey;

use super::{
    COMPONENT_LABEL, KEY_MATERIAL_LABEL, MANAGED_BY, MANAGED_BY_LABEL, VIRTUAL_CLOUD_LABEL,
};
use crate::crd::{VirtualCloudPartner, VirtualCloudPartnerSpec};

/// [`COMPONENT_LABEL`] of partner certificate ConfigMaps.
pub const COMPONENT_CERTIFICATE: &str = "partner-certificate";
/// [`COMPONENT_LABEL`] of the partner-info document ConfigMap.
pub const COMPONENT_DOCUMENT: &str = "partner-document";
/// [`COMPONENT_LABEL`] of the Carbyne Stack configuration ConfigMaps.
pub const COMPONENT_CONFIGURATION: &str = "configuration";
/// [`COMPONENT_LABEL`] of VirtualCloudPartners.
pub const COMPONENT_PARTNER: &str = "partner";
/// [`COMPONENT_LABEL`] of the MAC key share Secret.
pub const COMPONENT_MAC_KEY: &str = "mac-key-shares";
/// The label naming the party a partner object describes.
pub const PARTY_LABEL: &str = "spalding.carbynestack.io/party";

/// The labels of an object of `vc` with role `component`.
pub fn labels(vc: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (VIRTUAL_CLOUD_LABEL.to_owned(), vc.to_owned()),
        (COMPONENT_LABEL.to_owned(), component.to_owned()),
    ])
}

/// A label selector for the objects of `vc` with role `component`.
pub fn selector(vc: &str, component: &str) -> String {
    format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{VIRTUAL_CLOUD_LABEL}={vc},{COMPONENT_LABEL}={component}"
    )
}

/// Metadata of an object owned by the VC.
pub fn owned_meta(
    name: &str,
    vc: &VcKey,
    labels: BTreeMap<String, String>,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(vc.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// A ConfigMap of `vc` named `name` holding `data`.
pub fn config_map(
    name: &str,
    vc: &VcKey,
    component: &str,
    owner: &OwnerReference,
    data: BTreeMap<String, String>,
) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(name, vc, labels(&vc.name, component), owner),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// The certificate ConfigMap of `partner`, with its party label.
pub fn certificate_config_map(
    name: &str,
    vc: &VcKey,
    partner: &PartyName,
    owner: &OwnerReference,
    pem: &str,
) -> ConfigMap {
    let mut map = config_map(
        name,
        vc,
        COMPONENT_CERTIFICATE,
        owner,
        BTreeMap::from([(
            spalding_core::partner::CERTIFICATE_KEY.to_owned(),
            pem.to_owned(),
        )]),
    );
    if let Some(labels) = map.metadata.labels.as_mut() {
        labels.insert(PARTY_LABEL.to_owned(), partner.to_string());
    }
    map
}

/// The VirtualCloudPartner for `record`.
pub fn partner(vc: &VcKey, record: &PartnerRecord, owner: &OwnerReference) -> VirtualCloudPartner {
    let mut labels = labels(&vc.name, COMPONENT_PARTNER);
    labels.insert(PARTY_LABEL.to_owned(), record.name.to_string());
    let name = partner_object_name(&vc.name, &record.name);
    let mut object = VirtualCloudPartner::new(&name, VirtualCloudPartnerSpec::from(record));
    object.metadata = owned_meta(&name, vc, labels, owner);
    object
}

/// The MAC key share Secret: key material, so no owner reference (it must
/// survive the VC) but labelled for the VC and as key material.
pub fn mac_key_secret(vc: &VcKey, shares: &MacKeyShares) -> Secret {
    let mut labels = labels(&vc.name, COMPONENT_MAC_KEY);
    labels.insert(KEY_MATERIAL_LABEL.to_owned(), "true".to_owned());
    Secret {
        metadata: ObjectMeta {
            name: Some(MAC_KEY_SECRET.to_owned()),
            namespace: Some(vc.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        immutable: Some(true),
        string_data: Some(BTreeMap::from([
            (MAC_KEY_SHARE_P.to_owned(), shares.gfp_decimal()),
            (MAC_KEY_SHARE_2.to_owned(), shares.gf2n_hex()),
        ])),
        ..Secret::default()
    }
}

/// The body of a server-side apply of `status` on a `K`'s status subresource.
pub fn status_apply<K, S>(status: &S) -> serde_json::Value
where
    K: Resource<DynamicType = ()>,
    S: Serialize,
{
    serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    })
}

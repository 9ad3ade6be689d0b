//! The custom resource definitions a simulated party's API server serves:
//! Spalding's own ([`crate::crd::crds`]), Klyshko's (bundled from
//! `spalding-k8s/crds/klyshko/`, as published by Klyshko) and Istio's
//! networking and security kinds as schemaless definitions
//! (`x-kubernetes-preserve-unknown-fields`: any content is accepted).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

use super::Error;

const KLYSHKO: [(&str, &str); 4] = [
    (
        "tuplegenerationjobs.yaml",
        include_str!("../../crds/klyshko/tuplegenerationjobs.yaml"),
    ),
    (
        "tuplegenerationschedulers.yaml",
        include_str!("../../crds/klyshko/tuplegenerationschedulers.yaml"),
    ),
    (
        "tuplegenerationtasks.yaml",
        include_str!("../../crds/klyshko/tuplegenerationtasks.yaml"),
    ),
    (
        "tuplegenerators.yaml",
        include_str!("../../crds/klyshko/tuplegenerators.yaml"),
    ),
];

/// Klyshko's four CRDs (group `klyshko.carbnyestack.io`, sic).
pub fn klyshko_crds() -> Result<Vec<CustomResourceDefinition>, Error> {
    KLYSHKO
        .iter()
        .map(|(file, text)| {
            serde_norway::from_str(text).map_err(|source| Error::CrdFile { file, source })
        })
        .collect()
}

/// Istio's kinds an operator may create, schemaless, with a status subresource.
pub fn istio_crds() -> Vec<CustomResourceDefinition> {
    let kinds = [
        ("networking.istio.io", "Gateway", "gateways", "gw"),
        (
            "networking.istio.io",
            "VirtualService",
            "virtualservices",
            "vs",
        ),
        (
            "networking.istio.io",
            "DestinationRule",
            "destinationrules",
            "dr",
        ),
        (
            "networking.istio.io",
            "ServiceEntry",
            "serviceentries",
            "se",
        ),
        (
            "security.istio.io",
            "PeerAuthentication",
            "peerauthentications",
            "pa",
        ),
        (
            "security.istio.io",
            "AuthorizationPolicy",
            "authorizationpolicies",
            "ap",
        ),
    ];
    kinds
        .iter()
        .filter_map(|(group, kind, plural, short)| {
            let version = |name: &str, storage: bool| {
                json!({
                    "name": name, "served": true, "storage": storage,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "subresources": {"status": {}},
                })
            };
            serde_json::from_value(json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.{group}")},
                "spec": {
                    "group": group,
                    "scope": "Namespaced",
                    "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "shortNames": [short], "listKind": format!("{kind}List")},
                    "versions": [version("v1", true), version("v1beta1", false)],
                },
            }))
            .ok()
        })
        .collect()
}

/// Spalding's, Klyshko's and Istio's CRDs.
pub fn simulation_crds() -> Result<Vec<CustomResourceDefinition>, Error> {
    let mut crds = crate::crd::crds();
    crds.extend(klyshko_crds()?);
    crds.extend(istio_crds());
    Ok(crds)
}

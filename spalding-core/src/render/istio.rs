//! The Istio objects (`networking.istio.io/v1`) that expose this party's
//! services to its partners and reach theirs, as Carbyne Stack uses them:
//!
//! - Gateway [`GATEWAY`] on the ingress gateway: port 1443, HTTPS,
//!   `tls.mode: MUTUAL`, `credentialName` = the TLS Secret.
//! - VirtualServices routing `/amphora/inter-vcp`, `/castor/inter-vcp` and
//!   `/protobuf.Discovery` through that gateway to the local services.
//! - Per partner a ServiceEntry (`MESH_EXTERNAL`, `DNS`) for its host, and
//!   a DestinationRule originating mTLS (`MUTUAL`, `credentialName`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{RenderSettings, RenderedObject, host};
use crate::configuration::Formation;

/// Istio's networking API version.
pub const ISTIO_API_VERSION: &str = "networking.istio.io/v1";
/// The mTLS ingress gateway's name, as in Carbyne Stack.
pub const GATEWAY: &str = "cs-service-gateway-mtls";

/// Where one inter-VCP path is routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// VirtualService name.
    pub name: String,
    /// URI prefix matched.
    pub prefix: String,
    /// Destination service host.
    pub host: String,
    /// Destination service port.
    pub port: u16,
}

/// The Istio objects' settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioSettings {
    /// The ingress gateway's pod selector.
    pub selector: BTreeMap<String, String>,
    /// The mTLS port of the gateway, here and at the partners.
    pub port: u16,
    /// The inter-VCP routes.
    pub routes: Vec<Route>,
}

impl Default for IstioSettings {
    fn default() -> Self {
        let route = |name: &str, prefix: &str, host: &str, port| Route {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            host: host.to_owned(),
            port,
        };
        Self {
            selector: BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]),
            port: 1443,
            routes: vec![
                route(
                    "cs-amphora-inter-vcp",
                    "/amphora/inter-vcp",
                    "cs-amphora",
                    80,
                ),
                route(
                    "cs-castor-inter-vcp",
                    "/castor/inter-vcp",
                    "cs-castor",
                    10100,
                ),
                route(
                    "cs-ephemeral-discovery",
                    "/protobuf.Discovery",
                    "cs-ephemeral-discovery",
                    8080,
                ),
            ],
        }
    }
}

fn object(kind: &str, plural: &str, name: &str, spec: serde_json::Value) -> RenderedObject {
    RenderedObject::new(ISTIO_API_VERSION, kind, plural, name, spec)
}

/// The name of a partner's egress objects.
pub fn partner_object_name(vc: &str, partner: &str) -> String {
    format!("{vc}-{partner}-mtls")
}

/// Every Istio object of this party, ingress first, then per partner in
/// player order a ServiceEntry and a DestinationRule.
pub fn render_gateways(
    vc: &str,
    formation: &Formation,
    settings: &RenderSettings,
) -> Vec<RenderedObject> {
    let istio = &settings.istio;
    let mut objects = vec![object(
        "Gateway",
        "gateways",
        GATEWAY,
        json!({
            "selector": istio.selector,
            "servers": [{
                "port": { "number": istio.port, "name": "https-mtls", "protocol": "HTTPS" },
                "tls": { "mode": "MUTUAL", "credentialName": settings.tls_secret },
                "hosts": ["*"],
            }],
        }),
    )];
    objects.extend(istio.routes.iter().map(|r| {
        object(
            "VirtualService",
            "virtualservices",
            &r.name,
            json!({
                "hosts": ["*"],
                "gateways": [GATEWAY],
                "http": [{
                    "match": [{ "uri": { "prefix": r.prefix } }],
                    "route": [{ "destination": { "host": r.host, "port": { "number": r.port } } }],
                }],
            }),
        )
    }));
    for partner in formation.partners() {
        let name = partner_object_name(vc, partner.name.as_str());
        let host = host(partner);
        objects.push(object(
            "ServiceEntry",
            "serviceentries",
            &name,
            json!({
                "hosts": [host],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{ "number": istio.port, "name": "https-mtls", "protocol": "HTTPS" }],
            }),
        ));
        objects.push(object(
            "DestinationRule",
            "destinationrules",
            &name,
            json!({
                "host": host,
                "trafficPolicy": { "tls": {
                    "mode": "MUTUAL",
                    "credentialName": settings.tls_secret,
                    "sni": host,
                } },
            }),
        ));
    }
    objects
}

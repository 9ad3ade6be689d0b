//! The Istio objects (`networking.istio.io/v1`) that expose this party's
//! services and MP-SPDZ port to its partners and reach theirs, as Carbyne
//! Stack uses them. Istio terminates and originates the inter-VCP mTLS with
//! the TLS Secret (own certificate and key, the partners' certificates as
//! `cacert`); MP-SPDZ and the services speak plaintext behind it.
//!
//! For key generation (`initializing`, applied by the launcher with the
//! Service `<vc>-mpc` in front of the key generation pod), [`render_mpc`]:
//! - Gateway `<vc>-mpc` on the ingress gateway: this player's MPC port
//!   (`mpcBasePort + playerId`), protocol `TLS`, `tls.mode: MUTUAL`,
//!   `credentialName` = the TLS Secret;
//! - VirtualService `<vc>-mpc`: a `tcp` route from that port to the Service;
//! - per partner, in player order, a ServiceEntry `<vc>-<partner>-egress`
//!   (`MESH_EXTERNAL`, `DNS`) for its host with its mTLS service port and its
//!   MPC port, and a DestinationRule of the same name originating mTLS
//!   (`MUTUAL`, `credentialName`, SNI = the host) on every port. One rule per
//!   host: Istio does not merge two rules' traffic policies for one host, so
//!   the egress to a partner is set up once, here, and serves the services
//!   after `ready` as well.
//!   Istio matches outbound TCP without `addresses` by port alone; every
//!   partner's MPC port is its own (`mpcBasePort + j`), so that is
//!   unambiguous. A partner whose endpoint is an IP address (development,
//!   `spalding simulate`) gets `resolution: STATIC` with that address as
//!   endpoint, and no SNI.
//!
//! For `ready`, [`render_gateways`]: Gateway [`GATEWAY`] (port 1443,
//! `HTTPS`, `MUTUAL`, `credentialName`) and VirtualServices routing
//! `/amphora/inter-vcp`, `/castor/inter-vcp` and `/protobuf.Discovery`
//! through it to the local services.
//!
//! A partner is reached at the host of its partner-info endpoint: the
//! public host name of its VCP, which is also the CN/SAN of its certificate
//! in Carbyne Stack's setup. The ingress gateway's own Service must expose
//! [`IstioSettings::port`] and the MPC ports (`mpcBasePort` up to
//! `mpcBasePort + playerCount - 1`): that is cluster set-up, not Spalding's.

use std::collections::BTreeMap;
use std::net::IpAddr;

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

/// The name of the MPC exposure: the Service, Gateway and VirtualService
/// in front of the key generation pod.
pub fn mpc_name(vc: &str) -> String {
    format!("{vc}-mpc")
}

/// The MP-SPDZ port of `player`: `mpcBasePort + player`, as in the
/// `players` file.
pub fn mpc_port(settings: &RenderSettings, player: u32) -> u32 {
    u32::from(settings.mpc_base_port).saturating_add(player)
}

/// The name of a partner's egress objects (ServiceEntry, DestinationRule).
pub fn partner_object_name(vc: &str, partner: &str) -> String {
    format!("{vc}-{partner}-egress")
}

/// The key generation exposure: ingress Gateway and VirtualService of this
/// player's MPC port, then per partner in player order a ServiceEntry and a
/// DestinationRule (see the module documentation).
pub fn render_mpc(
    vc: &str,
    formation: &Formation,
    settings: &RenderSettings,
) -> Vec<RenderedObject> {
    let istio = &settings.istio;
    let name = mpc_name(vc);
    let port = mpc_port(settings, formation.player_id);
    let mut objects = vec![
        object(
            "Gateway",
            "gateways",
            &name,
            json!({
                "selector": istio.selector,
                "servers": [{
                    "port": { "number": port, "name": "tls-mpc", "protocol": "TLS" },
                    "tls": { "mode": "MUTUAL", "credentialName": settings.tls_secret },
                    "hosts": ["*"],
                }],
            }),
        ),
        object(
            "VirtualService",
            "virtualservices",
            &name,
            json!({
                "hosts": ["*"],
                "gateways": [name],
                "tcp": [{
                    "match": [{ "port": port }],
                    "route": [{ "destination": { "host": name, "port": { "number": port } } }],
                }],
            }),
        ),
    ];
    for (partner, player) in formation.members.iter().zip(0u32..) {
        if player == formation.player_id {
            continue;
        }
        let name = partner_object_name(vc, partner.name.as_str());
        let host = host(partner);
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let mut entry = json!({
            "hosts": [host],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [
                { "number": istio.port, "name": "https-mtls", "protocol": "HTTPS" },
                { "number": mpc_port(settings, player), "name": "tcp-mpc", "protocol": "TCP" },
            ],
        });
        let mut tls = json!({ "mode": "MUTUAL", "credentialName": settings.tls_secret });
        match ip {
            // An address, not a name: nothing to resolve, and no SNI (RFC 6066).
            Some(ip) => {
                entry["hosts"] = json!([ip.to_string()]);
                entry["addresses"] = json!([ip.to_string()]);
                entry["resolution"] = json!("STATIC");
                entry["endpoints"] = json!([{ "address": ip.to_string() }]);
            }
            None => tls["sni"] = json!(host),
        }
        let rule_host = ip.map_or_else(|| host.to_owned(), |ip| ip.to_string());
        objects.push(object("ServiceEntry", "serviceentries", &name, entry));
        objects.push(object(
            "DestinationRule",
            "destinationrules",
            &name,
            json!({ "host": rule_host, "trafficPolicy": { "tls": tls } }),
        ));
    }
    objects
}

/// The secure gateway of the services (`ready`): Gateway [`GATEWAY`], then
/// one VirtualService per inter-VCP route.
pub fn render_gateways(settings: &RenderSettings) -> Vec<RenderedObject> {
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
    objects
}

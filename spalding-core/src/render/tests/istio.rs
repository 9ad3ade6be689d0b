//! The Istio objects field by field for 2, 3 and 16 parties: the MPC port's
//! exposure and the egress to every partner (key generation), and the
//! services' secure gateway (`ready`).

use serde_json::{Value, json};

use super::{SIZES, formation, host_of, partners_of};
use crate::render::RenderSettings;
use crate::render::istio::{
    GATEWAY, mpc_name, mpc_port, partner_object_name, render_gateways, render_mpc,
};

#[test]
fn the_mpc_port_is_exposed_through_a_mutual_tls_gateway_and_a_tcp_route() {
    let settings = RenderSettings::default();
    for n in SIZES {
        for player in [0, 1, n - 1] {
            let objects = render_mpc("vc1", &formation(n, player), &settings);
            assert_eq!(objects.len(), 2 + 2 * (n - 1));
            for o in &objects {
                assert_eq!(o.body["apiVersion"], "networking.istio.io/v1");
                assert_eq!(o.body["metadata"]["name"], o.name.as_str());
            }
            let port = 5000 + player;
            let (gateway, route) = (&objects[0], &objects[1]);
            assert_eq!(
                (gateway.kind.as_str(), gateway.name.as_str()),
                ("Gateway", "vc1-mpc")
            );
            assert_eq!(
                gateway.body["spec"],
                json!({
                    "selector": {"istio": "ingressgateway"},
                    "servers": [{
                        "port": {"number": port, "name": "tls-mpc", "protocol": "TLS"},
                        "tls": {"mode": "MUTUAL", "credentialName": "cs-vcp-tls"},
                        "hosts": ["*"],
                    }],
                })
            );
            assert_eq!(
                (route.kind.as_str(), route.name.as_str()),
                ("VirtualService", "vc1-mpc")
            );
            assert_eq!(
                route.body["spec"],
                json!({
                    "hosts": ["*"],
                    "gateways": ["vc1-mpc"],
                    "tcp": [{
                        "match": [{"port": port}],
                        "route": [{"destination": {"host": "vc1-mpc", "port": {"number": port}}}],
                    }],
                })
            );
        }
    }
}

#[test]
fn every_partner_is_reached_through_mutual_tls_on_its_service_and_mpc_ports() {
    let settings = RenderSettings::default();
    for n in SIZES {
        for player in [0, 1, n - 1] {
            let objects = render_mpc("vc1", &formation(n, player), &settings);
            let egress = &objects[2..];
            assert_eq!(egress.len(), 2 * (n - 1), "one pair per partner");
            for (pair, partner) in egress.chunks(2).zip(partners_of(n, player)) {
                let host = host_of(partner);
                let name = format!("vc1-party{partner}-egress");
                assert_eq!(name, partner_object_name("vc1", &format!("party{partner}")));
                let (entry, rule) = (&pair[0], &pair[1]);
                assert_eq!(
                    (entry.kind.as_str(), entry.name.as_str()),
                    ("ServiceEntry", name.as_str())
                );
                assert_eq!(
                    entry.body["spec"],
                    json!({
                        "hosts": [host],
                        "location": "MESH_EXTERNAL",
                        "resolution": "DNS",
                        "ports": [
                            {"number": 1443, "name": "https-mtls", "protocol": "HTTPS"},
                            {"number": 5000 + partner, "name": "tcp-mpc", "protocol": "TCP"},
                        ],
                    })
                );
                assert_eq!(
                    (rule.kind.as_str(), rule.name.as_str()),
                    ("DestinationRule", name.as_str())
                );
                assert_eq!(
                    rule.body["spec"],
                    json!({
                        "host": host,
                        "trafficPolicy": {"tls": {
                            "mode": "MUTUAL", "credentialName": "cs-vcp-tls", "sni": host}},
                    })
                );
            }
            assert!(
                egress
                    .iter()
                    .all(|o| !o.name.contains(&format!("party{player}-"))),
                "no egress to ourselves"
            );
        }
    }
}

#[test]
fn mpc_ports_follow_the_players_file_and_the_settings() {
    let settings = RenderSettings {
        mpc_base_port: 7000,
        tls_secret: "my-tls".to_owned(),
        ..RenderSettings::default()
    };
    let f = formation(3, 2);
    assert_eq!(mpc_port(&settings, 2), 7002);
    assert_eq!(mpc_name("vc1"), "vc1-mpc");
    let objects = render_mpc("vc1", &f, &settings);
    let server = &objects[0].body["spec"]["servers"][0];
    assert_eq!(server["port"]["number"], 7002);
    assert_eq!(server["tls"]["credentialName"], "my-tls");
    let ports: Vec<&Value> = objects[2..]
        .iter()
        .filter(|o| o.kind == "ServiceEntry")
        .map(|o| &o.body["spec"]["ports"][1]["number"])
        .collect();
    assert_eq!(ports, [7000, 7001]);
    let players = crate::render::mpspdz::players_file(&f, &settings);
    for (line, port) in players.lines().zip(7000..) {
        assert!(line.ends_with(&format!(":{port}")), "{line}");
    }
}

#[test]
fn the_secure_gateway_exposes_the_inter_vcp_paths_over_mutual_tls() {
    let objects = render_gateways(&RenderSettings::default());
    assert_eq!(objects.len(), 4);
    let gateway = &objects[0];
    assert_eq!(
        (gateway.kind.as_str(), gateway.name.as_str()),
        ("Gateway", GATEWAY)
    );
    assert_eq!(GATEWAY, "cs-service-gateway-mtls");
    assert_eq!(
        gateway.body["spec"],
        json!({
            "selector": {"istio": "ingressgateway"},
            "servers": [{
                "port": {"number": 1443, "name": "https-mtls", "protocol": "HTTPS"},
                "tls": {"mode": "MUTUAL", "credentialName": "cs-vcp-tls"},
                "hosts": ["*"],
            }],
        })
    );
    let routes: Vec<(&str, &Value, &Value)> = objects[1..]
        .iter()
        .inspect(|o| assert_eq!(o.kind, "VirtualService"))
        .inspect(|o| assert_eq!(o.body["spec"]["gateways"], json!([GATEWAY])))
        .map(|o| {
            let http = &o.body["spec"]["http"][0];
            (
                o.name.as_str(),
                &http["match"][0]["uri"]["prefix"],
                &http["route"][0]["destination"],
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            (
                "cs-amphora-inter-vcp",
                &json!("/amphora/inter-vcp"),
                &json!({"host": "cs-amphora", "port": {"number": 80}})
            ),
            (
                "cs-castor-inter-vcp",
                &json!("/castor/inter-vcp"),
                &json!({"host": "cs-castor", "port": {"number": 10100}})
            ),
            (
                "cs-ephemeral-discovery",
                &json!("/protobuf.Discovery"),
                &json!({"host": "cs-ephemeral-discovery", "port": {"number": 8080}})
            ),
        ]
    );
}

#[test]
fn partners_at_ip_addresses_are_static_entries_without_sni() {
    let mut f = formation(3, 0);
    f.members.edit(|m| {
        m[1].endpoint = crate::spec::Endpoint::new("https://192.0.2.7:8443/x").unwrap();
        m[2].endpoint = crate::spec::Endpoint::new("https://[2001:db8::7]:8443/x").unwrap();
    });
    let objects = render_mpc("vc1", &f, &RenderSettings::default());
    for (pair, ip) in objects[2..].chunks(2).zip(["192.0.2.7", "2001:db8::7"]) {
        let entry = &pair[0].body["spec"];
        assert_eq!(entry["hosts"], json!([ip]));
        assert_eq!(entry["addresses"], json!([ip]));
        assert_eq!(entry["resolution"], "STATIC");
        assert_eq!(entry["endpoints"], json!([{"address": ip}]));
        assert_eq!(entry["ports"][1]["protocol"], "TCP");
        let rule = &pair[1].body["spec"];
        assert_eq!(rule["host"], ip);
        assert_eq!(
            rule["trafficPolicy"]["tls"],
            json!({"mode": "MUTUAL", "credentialName": "cs-vcp-tls"})
        );
    }
}

//! Rendered objects checked field by field against the reference, for 2, 3
//! and 16 parties; Klyshko's resources against Klyshko's real CRDs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod istio;
mod schema;

use std::sync::OnceLock;

use num_bigint::BigUint;
use serde_json::{Value, json};

use super::carbyne::{CACERT, TLS_CRT, TLS_KEY, partner_urls, settings_data, tls_secret_data};
use super::mpspdz::{
    KeyGenSettings, QUIT_SIDECAR, keygen_script, mac_key_file, mac_key_paths, params_data,
    players_file,
};
use super::templates::{KLYSHKO_API_VERSION, render_services};
use super::*;
use crate::certificate::Certificate;
use crate::configuration::{Formation, FormedMember};
use crate::mac::MacKeyShares;
use crate::parameters::carbyne_stack_default;
use crate::spec::Endpoint;

const PRIME: &str = "198766463529478683931867765928436695041";
const R: &str = "141515903391459779531506841503331516415";
const R_INV: &str = "133854242216446749056083838363708373830";
const SIZES: [usize; 3] = [2, 3, 16];

fn certificates() -> &'static [Certificate] {
    static POOL: OnceLock<Vec<Certificate>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..16)
            .map(|i| {
                let key = rcgen::KeyPair::generate().unwrap();
                let pem = rcgen::CertificateParams::new(vec![host_of(i)])
                    .unwrap()
                    .self_signed(&key)
                    .unwrap()
                    .pem();
                Certificate::from_pem(&pem).unwrap()
            })
            .collect()
    })
}

fn host_of(i: usize) -> String {
    format!("vcp{i}.example.org")
}

/// Party `player` of an `n`-party VC; endpoints carry a port and a path to
/// check that only the host is used.
fn formation(n: usize, player: usize) -> Formation {
    Formation {
        player_id: u32::try_from(player).unwrap(),
        parameters: carbyne_stack_default(),
        members: (0..n)
            .map(|i| FormedMember {
                name: format!("party{i}").parse().unwrap(),
                endpoint: Endpoint::new(&format!("https://{}:8443/spalding", host_of(i))).unwrap(),
                certificate: certificates()[i].clone(),
            })
            .collect(),
    }
}

fn partners_of(n: usize, player: usize) -> impl Iterator<Item = usize> {
    (0..n).filter(move |i| *i != player)
}

#[test]
fn the_default_parameters_are_the_references() {
    let p = carbyne_stack_default();
    assert_eq!(p.prime().to_string(), PRIME);
    assert_eq!(p.r().to_string(), R);
    assert_eq!(p.r_inv().to_string(), R_INV);
    let prime: BigUint = PRIME.parse().unwrap();
    assert_eq!((BigUint::from(1u8) << 128u32) % &prime, R.parse().unwrap());
    let r: BigUint = R.parse().unwrap();
    let r_inv: BigUint = R_INV.parse().unwrap();
    assert_eq!((r * r_inv) % prime, BigUint::from(1u8));
}

#[test]
fn settings_config_map_matches_the_reference() {
    let settings = RenderSettings::default();
    for n in SIZES {
        for player in 0..n {
            let data = settings_data(&formation(n, player), &settings).unwrap();
            let master = player == 0;
            let urls = |service: &str| {
                partners_of(n, player)
                    .map(|i| format!("https://{}:1443/{service}", host_of(i)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            assert_eq!(data["PLAYER_ID"], player.to_string());
            assert_eq!(data["PLAYER_COUNT"], n.to_string());
            assert_eq!(data["SPDZ_PRIME"], PRIME);
            assert_eq!(data["SPDZ_R"], R);
            assert_eq!(data["SPDZ_R_INV"], R_INV);
            assert_eq!(data["SPDZ_GF2N_BIT_LENGTH"], "40");
            assert_eq!(data["SPDZ_GF2N_STORAGE_SIZE"], "8");
            assert_eq!(data["AMPHORA_VC_PARTNERS"], urls("amphora"));
            assert_eq!(data["AMPHORA_VC_PARTNERS"].split(',').count(), n - 1);
            assert_eq!(data["IS_MASTER"], master.to_string());
            assert_eq!(
                data["SLAVE_URIS"],
                if master {
                    urls("castor")
                } else {
                    String::new()
                }
            );
            assert_eq!(data["NO_SSL_VALIDATION"], "false");
            let ephemeral: Value = serde_json::from_str(&data["config.json"]).unwrap();
            assert_eq!(
                ephemeral,
                json!({
                    "prime": PRIME,
                    "rInv": R_INV,
                    "gf2nBitLength": 40,
                    "gf2nStorageSize": 8,
                    "prepFolder": "Player-Data",
                    "playerID": player,
                    "playerCount": n,
                    "tlsEnabled": true,
                    "frontendURL": host_of(player),
                })
            );
            let discovery: Value = serde_json::from_str(&data["discovery.json"]).unwrap();
            assert_eq!(
                discovery,
                json!({
                    "frontendURL": host_of(player),
                    "masterHost": host_of(0),
                    "masterPort": "31400",
                    "slave": !master,
                    "playerCount": n,
                })
            );
            assert_eq!(data.len(), 13, "no other keys: {:?}", data.keys());
            assert!(data.keys().all(|k| !k.to_ascii_lowercase().contains("mac")));
        }
    }
}

#[test]
fn tls_secret_holds_own_certificate_key_and_every_partner() {
    for n in SIZES {
        for player in [0, 1, n - 1] {
            let data = tls_secret_data(&formation(n, player), "KEY PEM").unwrap();
            assert_eq!(data.get(TLS_CRT), Some(certificates()[player].pem()));
            assert_eq!(data.get(TLS_KEY), Some("KEY PEM"));
            let cacert = data.get(CACERT).unwrap();
            assert_eq!(cacert.matches("-----BEGIN CERTIFICATE-----").count(), n - 1);
            let expected: String = partners_of(n, player)
                .map(|i| certificates()[i].pem())
                .collect();
            assert_eq!(cacert, expected, "partners in player order");
            assert!(!cacert.contains(certificates()[player].pem()));
            assert_eq!(format!("{data:?}"), "TlsSecretData(<redacted>)");
        }
    }
}

#[test]
fn players_file_is_identical_everywhere_and_in_player_order() {
    let settings = RenderSettings::default();
    for n in SIZES {
        let expected: String = (0..n)
            .map(|i| format!("{}:{}\n", host_of(i), 5000 + i))
            .collect();
        for player in 0..n {
            assert_eq!(players_file(&formation(n, player), &settings), expected);
        }
    }
    let custom = RenderSettings {
        mpc_base_port: 7000,
        ..RenderSettings::default()
    };
    assert!(players_file(&formation(2, 0), &custom).ends_with(":7001\n"));
}

#[test]
fn mac_key_files_and_params_data_use_mp_spdz_formats() {
    let shares = MacKeyShares::from_stored("12345678901234567890", "abcdef0123").unwrap();
    for n in SIZES {
        for player in [0, n - 1] {
            let f = formation(n, player);
            let (p, two) = mac_key_paths(&f);
            assert_eq!(
                p,
                format!("Player-Data/{n}-p-128/Player-MAC-Keys-p-P{player}")
            );
            assert_eq!(
                two,
                format!("Player-Data/{n}-2-40/Player-MAC-Keys-2-P{player}")
            );
            let (p, two) = mac_key_file(&f, &shares);
            assert_eq!(p, format!("{n} 12345678901234567890\n"));
            assert_eq!(two, format!("{n} abcdef0123\n"));
        }
    }
    let f = formation(3, 1);
    assert_eq!(
        params_data(&f, &RenderSettings::default()),
        format!("{PRIME}\n1\n")
    );
    let plain = RenderSettings {
        montgomery: false,
        ..RenderSettings::default()
    };
    assert_eq!(params_data(&f, &plain), format!("{PRIME}\n0\n"));
}

#[test]
fn keygen_script_reads_shares_from_the_secret_and_quits_the_sidecar() {
    let settings = RenderSettings::default();
    let keygen = KeyGenSettings::default();
    let script = keygen_script(&formation(3, 2), &settings, &keygen);
    assert!(script.starts_with("set -eu\n"));
    assert!(
        !script.contains("set -x"),
        "never trace: the shares pass through the shell"
    );
    assert!(script.contains("\"$(cat '/etc/spalding/mac-key/mac_key_share_p')\" > 'Player-Data/3-p-128/Player-MAC-Keys-p-P2'"));
    assert!(script.contains("\"$(cat '/etc/spalding/mac-key/mac_key_share_2')\" > 'Player-Data/3-2-40/Player-MAC-Keys-2-P2'"));
    assert!(script.contains(&format!("{PRIME} 1 > 'Player-Data/3-p-128/Params-Data'")));
    assert!(script.contains(
        "'./cowgear-offline.x' '-p' '2' '-N' '3' '-ip' '/etc/spalding/players/players' '-P'"
    ));
    assert!(script.contains("-le 10 ]"));
    assert!(script.contains(QUIT_SIDECAR));
    let quiet = KeyGenSettings {
        quit_sidecar: false,
        ..KeyGenSettings::default()
    };
    assert!(!keygen_script(&formation(3, 2), &settings, &quiet).contains("quitquitquit"));
}

#[test]
fn klyshko_resources_on_every_player_and_the_scheduler_on_player_0_only() {
    let settings = RenderSettings::default();
    for n in SIZES {
        for player in 0..n {
            let objects = render_services("vc1", &formation(n, player), &settings).unwrap();
            let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
            if player == 0 {
                assert_eq!(kinds, ["TupleGenerator", "TupleGenerationScheduler"]);
            } else {
                assert_eq!(kinds, ["TupleGenerator"]);
            }
            for o in &objects {
                assert_eq!(o.api_version, KLYSHKO_API_VERSION);
                assert_eq!(o.body["apiVersion"], "klyshko.carbnyestack.io/v1alpha1");
                assert_eq!(o.body["metadata"]["name"], o.name.as_str());
                assert_eq!(o.readiness, ReadinessRule::Exists);
            }
            assert_eq!(objects[0].name, "vc1-cowgear");
            assert_eq!(
                objects[0].body["spec"]["template"]["spec"]["container"]["image"],
                "ghcr.io/carbynestack/klyshko-mp-spdz-cowgear:latest"
            );
        }
    }
}

#[test]
fn klyshko_resources_validate_against_the_crds() {
    let crds = [
        include_str!("../testdata/klyshko-crds/tuplegenerators.yaml"),
        include_str!("../testdata/klyshko-crds/tuplegenerationschedulers.yaml"),
    ];
    let objects = render_services("vc1", &formation(3, 0), &RenderSettings::default()).unwrap();
    let mut validated = 0;
    for n in SIZES {
        for player in [0, 1, n - 1] {
            let rendered =
                render_services("vc1", &formation(n, player), &RenderSettings::default()).unwrap();
            for object in &rendered {
                let crd: Value = crds
                    .iter()
                    .map(|text| serde_norway::from_str::<Value>(text).unwrap())
                    .find(|crd| crd["spec"]["names"]["kind"] == object.kind.as_str())
                    .unwrap();
                assert_eq!(crd["spec"]["group"], "klyshko.carbnyestack.io");
                assert_eq!(crd["spec"]["names"]["plural"], object.plural.as_str());
                let version = &crd["spec"]["versions"][0];
                assert_eq!(version["name"], "v1alpha1");
                let errors = schema::validate(&version["schema"]["openAPIV3Schema"], &object.body);
                assert!(errors.is_empty(), "{} invalid: {errors:?}", object.kind);
                validated += 1;
            }
        }
    }
    assert_eq!(validated, 3 * 4, "3 sizes, 3 players, 1 scheduler each");
    // The checker does catch mistakes.
    let mut bad = objects[0].body.clone();
    bad["spec"]["supports"][0]["type"] = json!("NO_SUCH_TUPLE");
    bad["spec"]["supports"][1]["batchSize"] = json!(0);
    bad["spec"]["unknown"] = json!(1);
    bad["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("container");
    let crd: Value = serde_norway::from_str(crds[0]).unwrap();
    let errors = schema::validate(
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        &bad,
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
}

#[test]
fn placeholders_are_filled_typed_and_disabled_templates_skipped() {
    let mut settings = RenderSettings::default();
    for t in &mut settings.services {
        t.enabled = t.api_version != KLYSHKO_API_VERSION;
    }
    let objects = render_services("vc1", &formation(3, 1), &settings).unwrap();
    let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["Amphora", "Castor", "Ephemeral"]);
    assert_eq!(objects[0].name, "vc1-amphora");
    assert_eq!(
        objects[0].body["spec"],
        json!({
            "settingsConfigMap": "cs-vcp-settings",
            "macKeySecret": "io.carbynestack.engine.params.secret",
            "tlsSecret": "cs-vcp-tls",
            "playerId": 1,
            "playerCount": 3,
        })
    );
    settings.services[2].name = "${nope}".to_owned();
    assert!(matches!(
        render_services("vc1", &formation(3, 1), &settings),
        Err(RenderError::Template { .. })
    ));
}

#[test]
fn readiness_rules() {
    let object = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
    assert!(ReadinessRule::Exists.is_ready(&json!({})));
    let condition = |t: &str| ReadinessRule::Condition {
        condition_type: t.to_owned(),
    };
    assert!(condition("Ready").is_ready(&object));
    assert!(!condition("Synced").is_ready(&object));
    assert!(!condition("Ready").is_ready(&json!({})));
    let field = |v: &str| ReadinessRule::Field {
        path: "status.phase".to_owned(),
        expected: json!(v),
    };
    assert!(field("Running").is_ready(&object));
    assert!(!field("Pending").is_ready(&object));
    let parsed: ReadinessRule =
        serde_json::from_value(json!({"rule": "condition", "conditionType": "Ready"})).unwrap();
    assert_eq!(parsed, condition("Ready"));
}

#[test]
fn hosts_drop_ports_and_keep_ipv6_brackets() {
    let mut f = formation(2, 0);
    f.members
        .edit(|m| m[1].endpoint = Endpoint::new("https://[::1]:8443/x").unwrap());
    assert_eq!(host(&f.members[0]), "vcp0.example.org");
    assert_eq!(host(&f.members[1]), "[::1]");
    assert!(matches!(
        me(&Formation { player_id: 5, ..f }),
        Err(RenderError::NoSuchPlayer(5))
    ));
}

/// Everything rendered for a party, as text: every ConfigMap's data, the
/// foundation services, the Istio objects, the players file and the key
/// generation script. Only the MAC key Secret may hold a share.
fn everything_rendered(n: usize, player: usize) -> String {
    let settings = RenderSettings::default();
    let f = formation(n, player);
    let mut text = format!(
        "{:?}{:?}{:?}",
        settings_data(&f, &settings).unwrap(),
        f.vcp_config(),
        f.engine_params()
    );
    text += &players_file(&f, &settings);
    text += &keygen_script(&f, &settings, &KeyGenSettings::default());
    let objects = render_services("vc1", &f, &settings)
        .unwrap()
        .into_iter()
        .chain(super::istio::render_mpc("vc1", &f, &settings))
        .chain(super::istio::render_gateways(&settings));
    for o in objects {
        text += &o.body.to_string();
    }
    text
}

#[test]
fn no_mac_key_share_is_rendered_anywhere() {
    let shares =
        MacKeyShares::from_stored("104729104723104717104711104707104701", "9d3c5e7a1b").unwrap();
    for n in SIZES {
        for player in [0, n - 1] {
            let text = everything_rendered(n, player);
            assert!(!text.contains(&shares.gfp_decimal()));
            assert!(!text.contains(&shares.gf2n_hex()));
            for word in ["mac_key_share_p", "mac_key_share_2"] {
                // Only the script names the Secret's keys, to read the mounted files.
                assert_eq!(
                    text.matches(word).count(),
                    1,
                    "{word} outside the mounted Secret path"
                );
            }
            assert!(!text.to_ascii_lowercase().contains("extra"), "no extra map");
        }
    }
}

#[test]
fn klyshko_configuration_maps_match_the_reference() {
    for n in SIZES {
        for player in [0, 1, n - 1] {
            let f = formation(n, player);
            assert_eq!(
                f.vcp_config(),
                std::collections::BTreeMap::from([
                    ("playerCount".to_owned(), n.to_string()),
                    ("playerId".to_owned(), player.to_string()),
                ])
            );
            assert_eq!(
                f.engine_params(),
                std::collections::BTreeMap::from([("prime".to_owned(), PRIME.to_owned())])
            );
            assert_eq!(f.is_master(), player == 0);
        }
    }
}

#[test]
fn partner_urls_name_the_gateway_port_unless_it_is_the_schemes_default() {
    let formation = formation(3, 0);
    let mut settings = RenderSettings::default();
    assert_eq!(
        partner_urls(&formation, &settings, "amphora"),
        [1, 2].map(|i| format!("https://{}:1443/amphora", host_of(i)))
    );
    settings.istio.port = 443;
    assert_eq!(
        partner_urls(&formation, &settings, "castor"),
        [1, 2].map(|i| format!("https://{}/castor", host_of(i)))
    );
    settings.scheme = "http".to_owned();
    assert_eq!(
        partner_urls(&formation, &settings, "castor"),
        [1, 2].map(|i| format!("http://{}:443/castor", host_of(i)))
    );
}

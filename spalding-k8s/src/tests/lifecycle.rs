//! Key generation, configuration, services and gateways against the
//! scripted API server: the KubeLauncher's Job and its phases, the TLS
//! Secret, the dynamic Klyshko and Istio objects, and the create-only MAC
//! key Secret under conflict.

use std::sync::Arc;

use http::{Method, StatusCode};
use k8s_openapi::api::batch::v1::JobStatus;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use spalding_core::configuration::{Formation, FormedMember};
use spalding_core::mac::MacKeyShares;
use spalding_core::ports::{
    Cluster, CreateOutcome, KeyGenerationPhase, MockDocumentSigner, MpcLauncher, VcKey,
};
use spalding_core::render::RenderSettings;

use super::fixtures::*;
use crate::cluster::KubeCluster;
use crate::identity::VcpIdentity;
use crate::launcher::{KubeLauncher, LauncherSettings, phase};

const VCS: &str = "/apis/carbynestack.io/v1/namespaces/default/virtualclouds";
const CMS: &str = "/api/v1/namespaces/default/configmaps";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const KLYSHKO: &str = "/apis/klyshko.carbnyestack.io/v1alpha1/namespaces/default";
const ISTIO: &str = "/apis/networking.istio.io/v1/namespaces/default";
const APPLY: &str = "?&force=true&fieldManager=spalding";
const SHARE_P: &str = "123456789012345678901234567890";

const KEYGEN_SELECTOR: &str = "app.kubernetes.io%2Fmanaged-by%3Dspalding%2Cspalding.carbynestack.io%2Fvirtual-cloud%3Dfoo%2Capp.kubernetes.io%2Fcomponent%3Dkey-generation";

/// The LIST of `path` (a collection) under the selector of `component`.
fn listing(path: &str, component: &str) -> Exchange {
    Exchange::get(format!(
        "{path}?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dspalding%2Cspalding.carbynestack.io%2Fvirtual-cloud%3Dfoo%2Capp.kubernetes.io%2Fcomponent%3D{component}"
    ))
}

fn empty(kind: &str) -> Value {
    list("v1", kind, vec![])
}

fn istio_object(kind: &str, name: &str) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": kind,
        "metadata": {"name": name, "namespace": NS}, "spec": {}})
}

fn key() -> VcKey {
    VcKey::new(NS, VC)
}

/// Party `a` is player 0, `b` player 1.
fn formation() -> Formation {
    let member = |party: &str, certificate| FormedMember {
        name: name(party),
        endpoint: endpoint(party),
        certificate,
    };
    Formation {
        player_id: 0,
        parameters: parameters().validate().unwrap(),
        members: vec![
            member("a", identity().certificate),
            member("b", partner_certificate()),
        ]
        .into(),
    }
}

fn partner_certificate() -> spalding_core::certificate::Certificate {
    static B: std::sync::OnceLock<spalding_core::certificate::Certificate> =
        std::sync::OnceLock::new();
    B.get_or_init(|| certificate("b")).clone()
}

fn vc_json() -> Value {
    as_json(&virtual_cloud())
}

fn job_json(status: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "foo-keygen", "namespace": NS, "annotations": {
            "spalding.carbynestack.io/formation": serde_json::to_string(&formation()).unwrap()}},
        "spec": {"template": {"spec": {"containers": []}}},
        "status": status})
}

fn cluster(client: kube::Client) -> KubeCluster {
    let reporter = Reporter {
        controller: "spalding".into(),
        instance: None,
    };
    let identity = VcpIdentity::generate("a.example", &["a.example".to_owned()]).unwrap();
    KubeCluster::new(client, reporter, Arc::new(MockDocumentSigner::new()))
        .with_lifecycle(RenderSettings::default(), &identity)
}

#[test]
fn job_status_maps_to_phases() {
    let status = |v: Value| serde_json::from_value::<JobStatus>(v).unwrap();
    assert_eq!(phase(None), KeyGenerationPhase::Pending);
    assert_eq!(phase(Some(&status(json!({})))), KeyGenerationPhase::Pending);
    assert_eq!(
        phase(Some(&status(json!({"active": 1})))),
        KeyGenerationPhase::Running
    );
    assert_eq!(
        phase(Some(&status(
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        ))),
        KeyGenerationPhase::Succeeded
    );
    assert_eq!(
        phase(Some(&status(
            json!({"failed": 5, "conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
        ))),
        KeyGenerationPhase::Failed {
            reason: "BackoffLimitExceeded: Job has reached the specified backoff limit".to_owned()
        }
    );
}

#[tokio::test]
async fn key_generation_reads_formation_and_phase_from_the_job() {
    let (client, server) = ApiServer::new();
    let launcher = KubeLauncher::new(
        client,
        RenderSettings::default(),
        LauncherSettings::default(),
    );
    let server = server.play(vec![
        Exchange::get(format!("{JOBS}/foo-keygen")).not_found(),
        Exchange::get(format!("{JOBS}/foo-keygen")).answer(job_json(json!({"active": 1}))),
        Exchange::get(format!("{JOBS}/foo-keygen")).answer(job_json(json!({"conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}))),
    ]);
    assert_eq!(launcher.key_generation(&key()).await.unwrap(), None);
    let running = launcher.key_generation(&key()).await.unwrap().unwrap();
    assert_eq!(running.formation, formation());
    assert_eq!(running.phase, KeyGenerationPhase::Running);
    let failed = launcher.key_generation(&key()).await.unwrap().unwrap();
    assert_eq!(
        failed.phase,
        KeyGenerationPhase::Failed {
            reason: format!("DeadlineExceeded (delete Job {NS}/foo-keygen to run it again)")
        }
    );
    finish(server).await;
}

#[tokio::test]
async fn launch_creates_volume_players_service_and_a_fresh_job() {
    let (client, server) = ApiServer::new();
    let identity = VcpIdentity::generate("a.example", &["a.example".to_owned()]).unwrap();
    let launcher = KubeLauncher::new(
        client,
        RenderSettings::default(),
        LauncherSettings::default(),
    )
    .with_identity(&identity);
    let mut claim_exists = Exchange::new(
        Method::POST,
        "/api/v1/namespaces/default/persistentvolumeclaims?",
    );
    claim_exists.status = StatusCode::CONFLICT;
    claim_exists.answer = status(409, "AlreadyExists");
    let server = server.play(vec![
        Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
        claim_exists.body(json!({"metadata": {"name": "cs-he-keys",
            "labels": {"spalding.carbynestack.io/key-material": "true"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})),
        listing(CMS, "key-generation").answer(empty("ConfigMap")),
        listing("/api/v1/namespaces/default/services", "key-generation").answer(empty("Service")),
        listing(&format!("{ISTIO}/gateways"), "key-generation").answer(empty("Gateway")),
        listing(&format!("{ISTIO}/virtualservices"), "key-generation").answer(empty("VirtualService")),
        // A partner of an earlier formation: its egress objects go.
        Exchange::get(format!("{ISTIO}/serviceentries?&labelSelector={KEYGEN_SELECTOR}"))
            .answer(list("networking.istio.io/v1", "ServiceEntry", vec![
                istio_object("ServiceEntry", "foo-b-egress"),
                istio_object("ServiceEntry", "foo-c-egress"),
            ])),
        Exchange::get(format!("{ISTIO}/destinationrules?&labelSelector={KEYGEN_SELECTOR}"))
            .answer(list("networking.istio.io/v1", "DestinationRule", vec![
                istio_object("DestinationRule", "foo-b-egress"),
            ])),
        Exchange::patch(format!("{CMS}/foo-players{APPLY}"))
            .body(json!({"data": {"players": "a.example:5000\nb.example:5001\n"}})),
        Exchange::patch(format!("/api/v1/namespaces/default/services/foo-mpc{APPLY}"))
            .body(json!({"spec": {"ports": [{"name": "tcp-mpc", "port": 5000, "protocol": "TCP"}]}})),
        // The Secret the gateway names, before the gateway (read first: an
        // unchanged Secret is not applied again).
        Exchange::get(format!("{SECRETS}/cs-vcp-tls")).not_found(),
        Exchange::patch(format!("{SECRETS}/cs-vcp-tls{APPLY}"))
            .body(json!({"type": "Opaque", "metadata": {"labels": {"app.kubernetes.io/component": "tls"}}})),
        Exchange::patch(format!("{ISTIO}/gateways/foo-mpc{APPLY}")).body(json!({
            "kind": "Gateway",
            "metadata": {"namespace": NS, "labels": {"app.kubernetes.io/component": "key-generation"}},
            "spec": {"servers": [{"port": {"number": 5000, "name": "tls-mpc", "protocol": "TLS"},
                "tls": {"mode": "MUTUAL", "credentialName": "cs-vcp-tls"}, "hosts": ["*"]}]}})),
        Exchange::patch(format!("{ISTIO}/virtualservices/foo-mpc{APPLY}")).body(json!({
            "spec": {"gateways": ["foo-mpc"], "tcp": [{"match": [{"port": 5000}],
                "route": [{"destination": {"host": "foo-mpc", "port": {"number": 5000}}}]}]}})),
        Exchange::patch(format!("{ISTIO}/serviceentries/foo-b-egress{APPLY}")).body(json!({
            "spec": {"hosts": ["b.example"], "location": "MESH_EXTERNAL", "ports": [
                {"number": 1443, "name": "https-mtls", "protocol": "HTTPS"},
                {"number": 5001, "name": "tcp-mpc", "protocol": "TCP"}]}})),
        Exchange::patch(format!("{ISTIO}/destinationrules/foo-b-egress{APPLY}")).body(json!({
            "spec": {"host": "b.example", "trafficPolicy": {"tls": {
                "mode": "MUTUAL", "credentialName": "cs-vcp-tls", "sni": "b.example"}}}})),
        Exchange::delete(format!("{ISTIO}/serviceentries/foo-c-egress?"))
            .answer(istio_object("ServiceEntry", "foo-c-egress")),
        // No Job yet: created at once, nothing deleted before.
        Exchange::new(Method::POST, format!("{JOBS}?"))
            .body(json!({"metadata": {"name": "foo-keygen",
                "labels": {"app.kubernetes.io/managed-by": "spalding"}},
                "spec": {"backoffLimit": 4, "template": {"spec": {"restartPolicy": "Never"}}}}))
            .answer(job_json(json!({}))),
    ]);
    launcher
        .launch_key_generation(&key(), &formation())
        .await
        .unwrap();
    let bodies = finish(server).await;
    let job = &bodies[17];
    assert!(bodies[11]["data"]["tls.key"].is_string());
    assert!(bodies[11]["data"]["cacert"].is_string());
    for istio in &bodies[12..16] {
        assert_eq!(istio["metadata"]["ownerReferences"][0]["uid"], UID);
    }
    assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], UID);
    assert!(
        bodies[1]["metadata"].get("ownerReferences").is_none(),
        "key material outlives the VC"
    );
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "io.carbynestack.engine.params.secret"
    );
    assert_eq!(
        pod["volumes"][2]["persistentVolumeClaim"]["claimName"],
        "cs-he-keys"
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/carbynestack/klyshko-mp-spdz-cowgear:latest"
    );
    assert_eq!(container["command"][0], "/bin/sh");
    let script = container["command"][2].as_str().unwrap();
    assert!(script.contains("quitquitquit"));
    assert!(script.contains("/etc/spalding/mac-key/mac_key_share_p"));
    assert!(container.get("env").is_none(), "no share in the spec");
    assert!(job["metadata"]["annotations"]["spalding.carbynestack.io/formation"].is_string());
}

#[tokio::test]
async fn a_job_of_another_formation_is_deleted_and_created_anew() {
    let (client, server) = ApiServer::new();
    let launcher = KubeLauncher::new(
        client,
        RenderSettings::default(),
        LauncherSettings::default(),
    );
    let conflict = |method: Method, uri: String| {
        let mut exchange = Exchange::new(method, uri);
        exchange.status = StatusCode::CONFLICT;
        exchange.answer = status(409, "AlreadyExists");
        exchange
    };
    let empty = |kind: &str| list("networking.istio.io/v1", kind, vec![]);
    let server = server.play(vec![
        Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
        conflict(
            Method::POST,
            "/api/v1/namespaces/default/persistentvolumeclaims?".to_owned(),
        ),
        listing(CMS, "key-generation").answer(list("v1", "ConfigMap", vec![])),
        listing("/api/v1/namespaces/default/services", "key-generation").answer(list(
            "v1",
            "Service",
            vec![],
        )),
        listing(&format!("{ISTIO}/gateways"), "key-generation").answer(empty("Gateway")),
        listing(&format!("{ISTIO}/virtualservices"), "key-generation")
            .answer(empty("VirtualService")),
        listing(&format!("{ISTIO}/serviceentries"), "key-generation").answer(empty("ServiceEntry")),
        listing(&format!("{ISTIO}/destinationrules"), "key-generation")
            .answer(empty("DestinationRule")),
        Exchange::patch(format!("{CMS}/foo-players{APPLY}")),
        Exchange::patch(format!(
            "/api/v1/namespaces/default/services/foo-mpc{APPLY}"
        )),
        Exchange::patch(format!("{ISTIO}/gateways/foo-mpc{APPLY}")),
        Exchange::patch(format!("{ISTIO}/virtualservices/foo-mpc{APPLY}")),
        Exchange::patch(format!("{ISTIO}/serviceentries/foo-b-egress{APPLY}")),
        Exchange::patch(format!("{ISTIO}/destinationrules/foo-b-egress{APPLY}")),
        // The Job of the earlier formation is there: deleted, then created anew.
        conflict(Method::POST, format!("{JOBS}?")),
        Exchange::delete(format!("{JOBS}/foo-keygen?"))
            .body(json!({"propagationPolicy": "Background"}))
            .answer(job_json(json!({}))),
        Exchange::new(Method::POST, format!("{JOBS}?"))
            .body(json!({"metadata": {"name": "foo-keygen"}}))
            .answer(job_json(json!({}))),
    ]);
    launcher
        .launch_key_generation(&key(), &formation())
        .await
        .unwrap();
    finish(server).await;
}

#[tokio::test]
async fn an_unchanged_tls_secret_is_not_applied_again() {
    let identity = VcpIdentity::generate("a.example", &["a.example".to_owned()]).unwrap();
    let cluster = |client| {
        let reporter = Reporter {
            controller: "spalding".into(),
            instance: None,
        };
        KubeCluster::new(client, reporter, Arc::new(MockDocumentSigner::new()))
            .with_lifecycle(RenderSettings::default(), &identity)
    };
    let script = |tls: Vec<Exchange>| {
        let mut script = vec![
            Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
            listing(CMS, "configuration").answer(empty("ConfigMap")),
            Exchange::patch(format!("{CMS}/io.carbynestack.engine.params{APPLY}")),
            Exchange::patch(format!("{CMS}/cs-vcp-settings{APPLY}")),
        ];
        script.extend(tls);
        script.push(Exchange::patch(format!("{CMS}/cs-vcp-config{APPLY}")));
        script
    };
    // Absent: applied.
    let (client, server) = ApiServer::new();
    let server = server.play(script(vec![
        Exchange::get(format!("{SECRETS}/cs-vcp-tls")).not_found(),
        Exchange::patch(format!("{SECRETS}/cs-vcp-tls{APPLY}")),
    ]));
    cluster(client)
        .write_configuration(&key(), &formation())
        .await
        .unwrap();
    let applied = finish(server).await.swap_remove(5);
    // Holding what would be applied: read, not written.
    let (client, server) = ApiServer::new();
    let server = server.play(script(vec![
        Exchange::get(format!("{SECRETS}/cs-vcp-tls")).answer(applied.clone()),
    ]));
    cluster(client)
        .write_configuration(&key(), &formation())
        .await
        .unwrap();
    finish(server).await;
    // Other data (another formation's cacert): applied again.
    let mut changed = applied;
    changed["data"]["cacert"] = json!("b3RoZXI=");
    let (client, server) = ApiServer::new();
    let server = server.play(script(vec![
        Exchange::get(format!("{SECRETS}/cs-vcp-tls")).answer(changed),
        Exchange::patch(format!("{SECRETS}/cs-vcp-tls{APPLY}")),
    ]));
    cluster(client)
        .write_configuration(&key(), &formation())
        .await
        .unwrap();
    finish(server).await;
}

#[tokio::test]
async fn a_repeated_event_is_recorded_once() {
    use spalding_core::ports::{Event, EventKind};
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events?";
    let (client, server) = ApiServer::new();
    let cluster = cluster(client);
    let failed = Event {
        kind: EventKind::Warning,
        reason: "FetchFailed",
        message: "b: connection refused".to_owned(),
    };
    let changed = Event {
        kind: EventKind::Normal,
        reason: "StateChanged",
        message: "state admission → initializing".to_owned(),
    };
    let server = server.play_with(
        vec![
            Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
            Exchange::new(Method::POST, EVENTS)
                .body(json!({"reason": "FetchFailed", "note": "b: connection refused"})),
            Exchange::new(Method::POST, EVENTS).body(json!({"reason": "StateChanged"})),
        ],
        |step, body, answers| {
            if step > 0 {
                answers.push(body.clone());
            }
        },
    );
    cluster.record_event(&key(), &failed).await.unwrap();
    cluster.record_event(&key(), &failed).await.unwrap();
    cluster.record_event(&key(), &changed).await.unwrap();
    cluster.record_event(&key(), &failed).await.unwrap();
    finish(server).await;
}

#[tokio::test]
async fn state_changes_of_one_reason_are_separate_events_with_their_messages() {
    use spalding_core::ports::{Event, EventKind};
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events?";
    let (client, server) = ApiServer::new();
    let cluster = cluster(client);
    let change = |message: &str| Event {
        kind: EventKind::Normal,
        reason: "StateChanged",
        message: message.to_owned(),
    };
    // kube's Recorder alone would PATCH the first Event's series count for
    // the second (same type, reason and action), losing its message.
    let server = server.play(vec![
        Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
        Exchange::new(Method::POST, EVENTS)
            .body(json!({"reason": "StateChanged", "note": "state admission → initializing"})),
        Exchange::new(Method::POST, EVENTS)
            .body(json!({"reason": "StateChanged", "note": "state initializing → starting"})),
    ]);
    for message in [
        "state admission → initializing",
        "state initializing → starting",
    ] {
        cluster
            .record_event(&key(), &change(message))
            .await
            .unwrap();
    }
    finish(server).await;
}

#[tokio::test]
async fn an_existing_mac_key_secret_keeps_its_share() {
    let (client, server) = ApiServer::new();
    let cluster = cluster(client);
    let mut conflict = Exchange::new(Method::POST, format!("{SECRETS}?"));
    conflict.status = StatusCode::CONFLICT;
    conflict.answer = status(409, "AlreadyExists");
    let server = server.play(vec![conflict]);
    let shares = MacKeyShares::from_stored(SHARE_P, "abc").unwrap();
    let outcome = cluster
        .create_mac_key_shares(&key(), &shares)
        .await
        .unwrap();
    assert_eq!(outcome, CreateOutcome::AlreadyExisted);
    finish(server).await;
}

#[tokio::test]
async fn configuration_writes_settings_and_tls_secret_before_the_formation() {
    let (client, server) = ApiServer::new();
    let cluster = cluster(client);
    let f = formation();
    let server = server.play(vec![
        Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
        listing(CMS, "configuration").answer(empty("ConfigMap")),
        Exchange::patch(format!("{CMS}/io.carbynestack.engine.params{APPLY}")),
        Exchange::patch(format!("{CMS}/cs-vcp-settings{APPLY}"))
            .body(json!({"data": {"PLAYER_ID": "0", "IS_MASTER": "true",
                "AMPHORA_VC_PARTNERS": "https://b.example:1443/amphora"}}))
            .without("mac_key"),
        Exchange::get(format!("{SECRETS}/cs-vcp-tls")).not_found(),
        Exchange::patch(format!("{SECRETS}/cs-vcp-tls{APPLY}"))
            .body(json!({"type": "Opaque", "metadata": {"labels": {"app.kubernetes.io/component": "tls"}}})),
        Exchange::patch(format!("{CMS}/cs-vcp-config{APPLY}"))
            .body(json!({"data": {"playerCount": "2", "playerId": "0"}})),
    ]);
    cluster.write_configuration(&key(), &f).await.unwrap();
    let bodies = finish(server).await;
    let data = &bodies[5]["data"];
    let decode = |k: &str| {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data[k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode("tls.crt"), f.members[0].certificate.pem());
    assert_eq!(decode("cacert"), f.members[1].certificate.pem());
    assert!(decode("tls.key").contains("PRIVATE KEY"));
}

#[tokio::test]
async fn services_and_gateways_are_applied_recorded_and_read_back() {
    let (client, server) = ApiServer::new();
    let cluster = cluster(client);
    let f = formation();
    let record = |component: &str, objects: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("foo-{component}"),
            "annotations": {"spalding.carbynestack.io/formation": serde_json::to_string(&f).unwrap()}},
            "data": {"objects.json": objects.to_string()}})
    };
    let mut script = vec![
        Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
        Exchange::get(format!("{CMS}/foo-services")).not_found(),
        listing(&format!("{KLYSHKO}/tuplegenerators"), "services").answer(empty("TupleGenerator")),
        listing(&format!("{KLYSHKO}/tuplegenerationschedulers"), "services")
            .answer(empty("TupleGenerationScheduler")),
        Exchange::patch(format!("{KLYSHKO}/tuplegenerators/foo-cowgear{APPLY}")).body(json!({
            "apiVersion": "klyshko.carbnyestack.io/v1alpha1", "kind": "TupleGenerator",
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "spalding"}}})),
        Exchange::patch(format!("{KLYSHKO}/tuplegenerationschedulers/foo-scheduler{APPLY}")),
        Exchange::patch(format!("{CMS}/foo-services{APPLY}")),
        Exchange::get(format!("{CMS}/foo-gateways")).not_found(),
        listing(&format!("{ISTIO}/gateways"), "gateways").answer(empty("Gateway")),
        listing(&format!("{ISTIO}/virtualservices"), "gateways").answer(empty("VirtualService")),
        Exchange::patch(format!("{ISTIO}/gateways/cs-service-gateway-mtls{APPLY}")).body(json!({
            "spec": {"servers": [{"port": {"number": 1443, "name": "https-mtls", "protocol": "HTTPS"},
                "tls": {"mode": "MUTUAL", "credentialName": "cs-vcp-tls"}, "hosts": ["*"]}]}})),
        Exchange::patch(format!("{ISTIO}/virtualservices/cs-amphora-inter-vcp{APPLY}")),
        Exchange::patch(format!("{ISTIO}/virtualservices/cs-castor-inter-vcp{APPLY}")),
        Exchange::patch(format!("{ISTIO}/virtualservices/cs-ephemeral-discovery{APPLY}")),
        Exchange::patch(format!("{CMS}/foo-gateways{APPLY}")),
    ];
    let listed = json!([
        {"apiVersion": "klyshko.carbnyestack.io/v1alpha1", "kind": "TupleGenerator",
         "plural": "tuplegenerators", "name": "foo-cowgear", "readiness": {"rule": "exists"}},
        {"apiVersion": "klyshko.carbnyestack.io/v1alpha1", "kind": "TupleGenerationScheduler",
         "plural": "tuplegenerationschedulers", "name": "foo-scheduler", "readiness": {"rule": "exists"}}]);
    script.extend([
        Exchange::get(format!("{CMS}/foo-services")).answer(record("services", listed)),
        Exchange::get(format!("{KLYSHKO}/tuplegenerators/foo-cowgear")).answer(json!({
            "apiVersion": "klyshko.carbnyestack.io/v1alpha1", "kind": "TupleGenerator",
            "metadata": {"name": "foo-cowgear"}})),
        Exchange::get(format!("{KLYSHKO}/tuplegenerationschedulers/foo-scheduler")).not_found(),
        Exchange::get(format!("{CMS}/foo-gateways")).answer(record("gateways", json!([]))),
    ]);
    let server = server.play(script);
    cluster.create_services(&key(), &f).await.unwrap();
    cluster.deploy_gateways(&key(), &f).await.unwrap();
    let services = cluster.services(&key()).await.unwrap().unwrap();
    assert_eq!(services.formation, f);
    assert!(!services.ready, "the scheduler is missing");
    assert!(cluster.gateways(&key()).await.unwrap().unwrap().ready);
    let bodies = finish(server).await;
    assert_eq!(bodies[4]["metadata"]["ownerReferences"][0]["uid"], UID);
    assert_eq!(bodies[4]["metadata"]["namespace"], NS);
    let recorded: Value =
        serde_json::from_str(bodies[6]["data"]["objects.json"].as_str().unwrap()).unwrap();
    assert_eq!(recorded.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_write_does_not_stop_the_pass_and_applied_objects_are_skipped_next_time() {
    let (client, server) = ApiServer::new();
    let cluster = cluster(client);
    let f = formation();
    let mut failing = Exchange::patch(format!("{KLYSHKO}/tuplegenerators/foo-cowgear{APPLY}"));
    failing.status = StatusCode::INTERNAL_SERVER_ERROR;
    failing.answer = status(500, "InternalError");
    let script = vec![
        Exchange::get(format!("{VCS}/foo")).answer(vc_json()),
        Exchange::get(format!("{CMS}/foo-services")).not_found(),
        listing(&format!("{KLYSHKO}/tuplegenerators"), "services").answer(empty("TupleGenerator")),
        listing(&format!("{KLYSHKO}/tuplegenerationschedulers"), "services")
            .answer(empty("TupleGenerationScheduler")),
        // The first write fails; the second is still made.
        failing,
        Exchange::patch(format!(
            "{KLYSHKO}/tuplegenerationschedulers/foo-scheduler{APPLY}"
        )),
        // No record: the next pass lists again, finds the scheduler as
        // rendered (with what the server added) and writes only the rest.
        Exchange::get(format!("{CMS}/foo-services")).not_found(),
        listing(&format!("{KLYSHKO}/tuplegenerators"), "services").answer(empty("TupleGenerator")),
        listing(&format!("{KLYSHKO}/tuplegenerationschedulers"), "services"),
        Exchange::patch(format!("{KLYSHKO}/tuplegenerators/foo-cowgear{APPLY}")),
        Exchange::patch(format!("{CMS}/foo-services{APPLY}")),
    ];
    let server = server.play_with(script, |step, body, answers| match step {
        // The apply answers with the object as stored.
        5 => {
            let mut stored = body.clone();
            stored["metadata"]["uid"] = json!("scheduler-uid");
            stored["status"] = json!({"phase": "Ready"});
            answers.push(stored);
        }
        8 => {
            let stored = answers.last().cloned().unwrap();
            answers.push(list(
                "klyshko.carbnyestack.io/v1alpha1",
                "TupleGenerationScheduler",
                vec![stored],
            ));
        }
        _ => {}
    });
    let error = cluster.create_services(&key(), &f).await.unwrap_err();
    assert!(error.transient, "{error:?}");
    assert!(
        error.message.starts_with("1 of 2 writes failed")
            && error
                .message
                .contains("apply TupleGenerator default/foo-cowgear")
            && !error.message.contains("foo-scheduler"),
        "{}",
        error.message
    );
    cluster.create_services(&key(), &f).await.unwrap();
    let bodies = finish(server).await;
    let recorded: Value =
        serde_json::from_str(bodies[10]["data"]["objects.json"].as_str().unwrap()).unwrap();
    assert_eq!(recorded.as_array().unwrap().len(), 2);
}

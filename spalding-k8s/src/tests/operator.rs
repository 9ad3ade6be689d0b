//! The operator's parts: the identity Secret (create-only, against the
//! scripted API server), the published-document source, the probes, and one
//! whole [`crate::operator::run`] against a permissive fake API server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::client::Body;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use serde_json::{Value, json};
use spalding_core::memory::SimulatedLauncher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fixtures::*;
use crate::cluster::DOCUMENT_KEY;
use crate::cluster::objects::{COMPONENT_DOCUMENT, labels};
use crate::controller::Settings;
use crate::identity::VcpIdentity;
use crate::inspect::subject_alternative_names;
use crate::operator::documents::PublishedDocuments;
use crate::operator::health::{Readiness, probe};
use crate::operator::identity::{IdentityOrigin, load_or_create_secret, secret};
use crate::operator::{
    IdentitySource, OperatorConfig, OperatorError, PartnerInfoTls, endpoint_host,
};
use crate::server::{DocumentSource, respond};
use crate::transport::TransportOptions;

const SYSTEM: &str = "spalding-system";
const SECRETS: &str = "/api/v1/namespaces/spalding-system/secrets";
const IDENTITY: &str = "spalding-identity";

async fn load(client: &Client) -> Result<(VcpIdentity, IdentityOrigin), OperatorError> {
    load_or_create_secret(
        client,
        SYSTEM,
        IDENTITY,
        "a",
        &["spalding.a.example".into()],
    )
    .await
}

fn existing() -> (VcpIdentity, Value) {
    let identity = VcpIdentity::generate("a", &["spalding.a.example".into()]).unwrap();
    let json = serde_json::to_value(secret(SYSTEM, IDENTITY, &identity)).unwrap();
    (identity, json)
}

fn create() -> Exchange {
    Exchange::new(Method::POST, format!("{SECRETS}?")).body(json!({
        "type": "kubernetes.io/tls",
        "metadata": {"name": IDENTITY, "namespace": SYSTEM,
                     "labels": {"app.kubernetes.io/managed-by": "spalding", "app.kubernetes.io/component": "vcp-identity"}},
    }))
}

#[tokio::test]
async fn an_absent_identity_secret_is_created_with_a_generated_identity() {
    let (client, server) = ApiServer::new();
    let server = server.play_with(
        vec![
            Exchange::get(format!("{SECRETS}/{IDENTITY}")).not_found(),
            create(),
        ],
        |step, body, answers| {
            if step == 1 {
                answers.push(body.clone());
            }
        },
    );
    let (identity, origin) = load(&client).await.unwrap();
    let bodies = finish(server).await;
    assert_eq!(origin, IdentityOrigin::CreatedSecret);
    let stored: Secret = serde_json::from_value(bodies[1].clone()).unwrap();
    assert_eq!(stored.metadata.owner_references, None, "outlives every VC");
    let data = stored.data.unwrap();
    let text = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
    let reloaded = VcpIdentity::from_pem(&text("tls.crt"), &text("tls.key")).unwrap();
    assert_eq!(reloaded.fingerprint(), identity.fingerprint());
    assert_eq!(
        subject_alternative_names(identity.certificate()),
        vec!["DNS:spalding.a.example"]
    );
}

#[tokio::test]
async fn an_existing_identity_secret_is_loaded_never_replaced() {
    let (existing, json) = existing();
    let (client, server) = ApiServer::new();
    // One GET and nothing else: a create or update would fail the script.
    let server = server.play(vec![
        Exchange::get(format!("{SECRETS}/{IDENTITY}")).answer(json),
    ]);
    let (identity, origin) = load(&client).await.unwrap();
    finish(server).await;
    assert_eq!(origin, IdentityOrigin::ExistingSecret);
    assert_eq!(identity.fingerprint(), existing.fingerprint());
}

#[tokio::test]
async fn a_secret_created_meanwhile_by_another_replica_wins() {
    let (existing, json) = existing();
    let (client, server) = ApiServer::new();
    let mut conflict = create();
    conflict.status = StatusCode::CONFLICT;
    conflict.answer = status(409, "AlreadyExists");
    let server = server.play(vec![
        Exchange::get(format!("{SECRETS}/{IDENTITY}")).not_found(),
        conflict,
        Exchange::get(format!("{SECRETS}/{IDENTITY}")).answer(json),
    ]);
    let (identity, origin) = load(&client).await.unwrap();
    finish(server).await;
    assert_eq!(origin, IdentityOrigin::ExistingSecret);
    assert_eq!(identity.fingerprint(), existing.fingerprint());
}

#[tokio::test]
async fn a_secret_without_a_key_is_refused_by_name() {
    let (_, mut json) = existing();
    json["data"].as_object_mut().unwrap().remove("tls.key");
    let (client, server) = ApiServer::new();
    let server = server.play(vec![
        Exchange::get(format!("{SECRETS}/{IDENTITY}")).answer(json),
    ]);
    let error = load(&client).await.unwrap_err().to_string();
    finish(server).await;
    assert!(
        error.contains("spalding-system/spalding-identity") && error.contains("tls.key"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failed_create_never_reports_what_the_server_echoed() {
    let (client, server) = ApiServer::new();
    let mut failed = create();
    failed.status = StatusCode::INTERNAL_SERVER_ERROR;
    failed.answer = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "cannot store -----BEGIN PRIVATE KEY----- MIGH", "reason": "InternalError", "code": 500});
    let server = server.play(vec![
        Exchange::get(format!("{SECRETS}/{IDENTITY}")).not_found(),
        failed,
    ]);
    let error = load(&client).await.unwrap_err().to_string();
    finish(server).await;
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains("PRIVATE KEY"), "{error}");
}

#[test]
fn the_certificate_is_issued_for_the_endpoint_host() {
    let host = |url: &str| endpoint_host(&spalding_core::spec::Endpoint::new(url).unwrap());
    assert_eq!(
        host("https://spalding.a.example:8443/base"),
        "spalding.a.example"
    );
    assert_eq!(host("https://spalding.a.example"), "spalding.a.example");
    assert_eq!(host("https://[2001:db8::1]:8443"), "2001:db8::1");
}

/// The ConfigMap `KubeCluster` publishes `document` in.
fn document_map(namespace: &str, document: &Value, labelled: bool) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some("foo-partner-document".into());
    map.metadata.namespace = Some(namespace.into());
    map.metadata.labels = labelled.then(|| labels(VC, COMPONENT_DOCUMENT));
    map.data = Some(BTreeMap::from([(
        DOCUMENT_KEY.to_owned(),
        document.to_string(),
    )]));
    map
}

fn documents(maps: Vec<ConfigMap>) -> PublishedDocuments {
    let mut writer = Writer::<ConfigMap>::default();
    for map in maps {
        writer.apply_watcher_event(&watcher::Event::Apply(map));
    }
    PublishedDocuments::new(writer.as_reader())
}

fn signed_document() -> (spalding_core::document::PartnerDocument, Value) {
    let mut document = partner_document(&certificate("b"), None, 7);
    document.signature = Some("signature".into());
    let json = serde_json::to_value(&document).unwrap();
    (document, json)
}

#[tokio::test]
async fn the_published_document_is_served_from_the_store() {
    let (document, json) = signed_document();
    let source = documents(vec![document_map(NS, &json, true)]);
    assert_eq!(source.document(VC), Some(document.clone()));
    assert_eq!(source.document("bar"), None);
    let request = |path: &str| Request::get(path).body(()).unwrap();
    let response = respond(&source, &request("/v1/virtual-clouds/foo"));
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let served: spalding_core::document::PartnerDocument = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, document);
    let response = respond(&source, &request("/v1/virtual-clouds/bar"));
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_republished_document_is_served_at_once_and_a_removed_one_not_at_all() {
    let (document, json) = signed_document();
    let mut writer = Writer::<ConfigMap>::default();
    writer.apply_watcher_event(&watcher::Event::Apply(document_map(NS, &json, true)));
    let source = PublishedDocuments::new(writer.as_reader());
    let served = |source: &PublishedDocuments| {
        let json = source.document_json(VC)?.ok()?;
        serde_json::from_slice::<spalding_core::document::PartnerDocument>(&json).ok()
    };
    assert_eq!(served(&source), Some(document.clone()));
    assert_eq!(
        served(&source),
        Some(document.clone()),
        "served again unchanged"
    );
    let mut next = document.clone();
    next.sequence += 1;
    next.signature = Some("another signature".into());
    let next_json = serde_json::to_value(&next).unwrap();
    writer.apply_watcher_event(&watcher::Event::Apply(document_map(NS, &next_json, true)));
    assert_eq!(served(&source), Some(next.clone()));
    assert_eq!(source.document(VC), Some(next.clone()));
    writer.apply_watcher_event(&watcher::Event::Delete(document_map(NS, &next_json, true)));
    assert_eq!(served(&source), None);
    assert_eq!(source.document(VC), None);
}

#[test]
fn only_unambiguous_labelled_parsable_documents_are_served() {
    let (_, json) = signed_document();
    let unlabelled = documents(vec![document_map(NS, &json, false)]);
    assert_eq!(unlabelled.document(VC), None, "not written by Spalding");
    let twice = documents(vec![
        document_map(NS, &json, true),
        document_map("other", &json, true),
    ]);
    assert_eq!(twice.document(VC), None, "same VC name in two namespaces");
    let broken = documents(vec![document_map(NS, &json!("not a document"), true)]);
    assert_eq!(broken.document(VC), None);
    let mut other = json.clone();
    other["virtualCloud"] = json!("bar");
    let misfiled = documents(vec![document_map(NS, &other, true)]);
    assert_eq!(misfiled.document(VC), None, "document of another VC");
}

#[test]
fn probes_report_liveness_always_and_readiness_when_set() {
    let readiness = Readiness::default();
    let status = |path: &str, method: Method| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        probe(&readiness, &request).status()
    };
    assert_eq!(status("/healthz", Method::GET), StatusCode::OK);
    assert_eq!(
        status("/readyz", Method::GET),
        StatusCode::SERVICE_UNAVAILABLE
    );
    readiness.set(true);
    assert_eq!(status("/readyz", Method::GET), StatusCode::OK);
    assert_eq!(
        status("/readyz", Method::POST),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(status("/metrics", Method::GET), StatusCode::NOT_FOUND);
}

/// A fake API server for a whole operator: lists of VirtualClouds, partners
/// and admissions are empty, ConfigMap lists hold `maps`; watches never answer.
fn permissive_api_server(maps: Vec<ConfigMap>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut watches = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let uri = request.uri().to_string();
            if uri.contains("watch=true") {
                watches.push(respond);
                continue;
            }
            let items = if uri.contains("/configmaps") {
                serde_json::to_value(&maps).unwrap()
            } else {
                json!([])
            };
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items});
            respond.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&list).unwrap()))
                    .unwrap(),
            );
        }
    });
    Client::new(service, NS)
}

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// GET `path` over plain HTTP/1.1; the status line and body.
async fn get(address: SocketAddr, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

/// A fresh VCP identity for party `a` as PEM files in a new folder `name-<pid>`.
fn identity_files(name: &str) -> std::path::PathBuf {
    let identity = VcpIdentity::generate("a", &["a.example".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pems = identity.pems();
    std::fs::write(dir.join("tls.crt"), &pems.tls_crt).unwrap();
    std::fs::write(dir.join("tls.key"), &pems.tls_key).unwrap();
    dir
}

/// Party `a` serving plain HTTP on free ports with the identity in `dir`.
fn files_config(dir: &std::path::Path) -> OperatorConfig {
    OperatorConfig {
        party: name("a"),
        endpoint: endpoint("a"),
        namespace: Some(NS.into()),
        identity: IdentitySource::Files {
            certificate: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        },
        partner_info_address: free_address(),
        partner_info_tls: PartnerInfoTls::PlainHttp,
        health_address: free_address(),
        refresh_interval: Duration::from_secs(60),
        forming_interval: Duration::from_secs(2),
        debounce: Duration::from_millis(200),
        transport: TransportOptions::default(),
        instance: None,
        metrics_address: None,
        leader_election: None,
    }
}

#[tokio::test]
async fn the_operator_serves_documents_turns_ready_and_stops_on_shutdown() {
    let dir = identity_files("spalding-operator-test");
    let (document, json) = signed_document();
    let client = permissive_api_server(vec![document_map(NS, &json, true)]);
    let config = files_config(&dir);
    let (partner_info, health) = (config.partner_info_address, config.health_address);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(crate::operator::run(
        config,
        client,
        crate::operator::LauncherSource::Given(Arc::new(SimulatedLauncher::new())),
        async {
            let _ = stopped.await;
        },
    ));

    let mut ready = false;
    for _ in 0..100 {
        if get(health, "/readyz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the operator turns ready once documents are synced");
    let response = get(partner_info, "/v1/virtual-clouds/foo").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let served: spalding_core::document::PartnerDocument = serde_json::from_str(body).unwrap();
    assert_eq!(served, document);

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), operator)
        .await
        .expect("the operator stops on shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(get(health, "/healthz").await.is_none(), "probes stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_operator_refuses_to_start_without_its_identity() {
    let client = permissive_api_server(Vec::new());
    let config = OperatorConfig {
        party: name("a"),
        endpoint: endpoint("a"),
        namespace: None,
        identity: IdentitySource::Files {
            certificate: "/nonexistent/tls.crt".into(),
            key: "/nonexistent/tls.key".into(),
        },
        partner_info_address: free_address(),
        partner_info_tls: PartnerInfoTls::VcpCertificate,
        health_address: free_address(),
        refresh_interval: Duration::from_secs(60),
        forming_interval: Duration::from_secs(2),
        debounce: Duration::from_millis(200),
        transport: TransportOptions::default(),
        instance: None,
        metrics_address: None,
        leader_election: None,
    };
    let result = crate::operator::run(
        config,
        client,
        crate::operator::LauncherSource::Given(Arc::new(SimulatedLauncher::new())),
        async {},
    )
    .await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("/nonexistent/tls.crt"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_operator_stops_within_its_grace_period_when_the_api_server_never_answers() {
    let dir = identity_files("spalding-operator-hung");
    // Every request is held, never answered: the controller's first list of
    // VirtualClouds never completes.
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(request) = handle.next_request().await {
            held.push(request);
        }
    });
    let config = files_config(&dir);
    let run = crate::operator::run(
        config,
        Client::new(service, NS),
        crate::operator::LauncherSource::Given(Arc::new(SimulatedLauncher::new())),
        tokio::time::sleep(Duration::from_millis(100)),
    );
    let limit = crate::operator::CONTROLLER_STOP_GRACE + Duration::from_secs(5);
    let result = tokio::time::timeout(limit, run).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        result.is_ok_and(|r| r.is_ok()),
        "the operator stops within its grace period"
    );
}

#[test]
fn the_configured_pacing_reaches_the_controller() {
    let config = OperatorConfig {
        refresh_interval: Duration::from_secs(90),
        forming_interval: Duration::from_millis(500),
        debounce: Duration::ZERO,
        ..files_config(std::path::Path::new("/nonexistent"))
    };
    let settings = config.settings();
    assert_eq!(settings.refresh_interval, Duration::from_secs(90));
    assert_eq!(settings.forming_interval, Duration::from_millis(500));
    assert_eq!(settings.debounce, Duration::ZERO);
    assert_eq!(settings.max_backoff, Settings::default().max_backoff);
}

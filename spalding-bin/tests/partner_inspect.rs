//! End to end: `spalding partner inspect` against a partner-info server
//! started in the test, which serves directly with its VCP certificate
//! (trusted through `--ca-file`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use spalding_core::name::PartyName;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::DocumentSigner;
use spalding_core::spec::Endpoint;
use spalding_k8s::identity::VcpIdentity;
use spalding_k8s::sample::single_party_body;
use spalding_k8s::server::{PartnerInfoServer, server_tls_config};
use spalding_k8s::signing::VcpSigner;

struct Served {
    endpoint: Endpoint,
    ca_file: std::path::PathBuf,
    fingerprint: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(dir: &std::path::Path) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let identity = VcpIdentity::generate("party-b", &["127.0.0.1".to_owned()]).unwrap();
    let party = PartyName::new("party-b").unwrap();
    let body = single_party_body(
        "vc-one",
        &party,
        &endpoint,
        &identity,
        &ValidatedParameters::carbyne_stack_default(),
    );
    let document = VcpSigner::new(&identity).sign(&body, 3).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, identity.pems().tls_crt).unwrap();
    let tls = server_tls_config(&identity).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let documents = HashMap::from([("vc-one".to_owned(), document)]);
    tokio::spawn(
        PartnerInfoServer::new(Arc::new(documents)).serve_tls(listener, tls, async {
            let _ = stopped.await;
        }),
    );
    Served {
        endpoint,
        ca_file,
        fingerprint: identity.fingerprint().to_string(),
        _stop: stop,
    }
}

async fn spalding(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_spalding"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spalding-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_a_valid_partner_and_exits_zero() {
    let dir = temp_dir("inspect-ok");
    let served = serve(&dir).await;
    let args = |output: &str| {
        vec![
            "partner".to_owned(),
            "inspect".to_owned(),
            served.endpoint.to_string(),
            "--virtual-cloud".to_owned(),
            "vc-one".to_owned(),
            "--ca-file".to_owned(),
            served.ca_file.display().to_string(),
            "--output".to_owned(),
            output.to_owned(),
            "--allow-private-addresses".to_owned(),
        ]
    };
    let text = spalding(args("text")).await;
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    for expected in [
        "party:          party-b",
        "compatible:     yes",
        "CN=party-b",
        "IP:127.0.0.1",
        served.fingerprint.as_str(),
        "sequence:       3",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }

    let json = spalding(args("json")).await;
    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["fingerprint"], served.fingerprint.as_str());
    assert_eq!(value["compatible"], true);
    assert_eq!(value["members"][0]["name"], "party-b");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_fails_with_one_line_for_a_refused_document() {
    let dir = temp_dir("inspect-refused");
    let served = serve(&dir).await;
    // Incompatible parameters file, and a VC the partner does not have.
    let unknown = spalding(vec![
        "partner".to_owned(),
        "inspect".to_owned(),
        served.endpoint.to_string(),
        "--virtual-cloud".to_owned(),
        "vc-two".to_owned(),
        "--ca-file".to_owned(),
        served.ca_file.display().to_string(),
        "--allow-private-addresses".to_owned(),
    ])
    .await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");

    // Without the CA, the TLS certificate is not trusted.
    let untrusted = spalding(vec![
        "partner".to_owned(),
        "inspect".to_owned(),
        served.endpoint.to_string(),
        "--virtual-cloud".to_owned(),
        "vc-one".to_owned(),
        "--allow-private-addresses".to_owned(),
    ])
    .await;
    assert!(!untrusted.status.success());
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("cannot connect"));

    // A loopback endpoint is refused unless private addresses are allowed.
    let private = spalding(vec![
        "partner".to_owned(),
        "inspect".to_owned(),
        served.endpoint.to_string(),
        "--virtual-cloud".to_owned(),
        "vc-one".to_owned(),
        "--ca-file".to_owned(),
        served.ca_file.display().to_string(),
    ])
    .await;
    assert!(!private.status.success());
    assert!(String::from_utf8_lossy(&private.stderr).contains("not a public address"));

    let plain = spalding(vec![
        "partner".to_owned(),
        "inspect".to_owned(),
        "http://127.0.0.1:9".to_owned(),
        "--virtual-cloud".to_owned(),
        "vc-one".to_owned(),
    ])
    .await;
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("plain HTTP"));
    let _ = std::fs::remove_dir_all(&dir);
}

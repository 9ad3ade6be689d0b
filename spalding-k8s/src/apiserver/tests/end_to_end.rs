//! The real controller against the in-memory API server, and kubectl.

use std::time::Duration;

use kube::api::PostParams;
use kube::{Api, ResourceExt};
use spalding_core::ports::MockEntropy;

use super::objects::virtual_cloud;
use super::server;
use crate::controller::{self, FINALIZER};
use crate::crd::{VirtualCloud, VirtualCloudState};
use crate::tests::fixtures::{certificate, context, partner_document, transport};

#[tokio::test]
async fn the_controller_finalizes_and_reports_a_virtual_cloud() {
    let (server, client) = server().await;
    let b = certificate("b");
    let ctx = context(
        client.clone(),
        transport(Some(partner_document(&b, None, 1))),
        MockEntropy::new(),
    );
    let running = tokio::spawn(controller::run(client.clone(), ctx));
    let vcs: Api<VirtualCloud> = Api::namespaced(client, "default");
    vcs.create(
        &PostParams::default(),
        &virtual_cloud("foo", "https://b.example"),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let vc = loop {
        let vc = vcs.get("foo").await.unwrap();
        let state = vc.status.as_ref().map(|s| s.state);
        if vc.finalizers().iter().any(|f| f == FINALIZER)
            && state == Some(VirtualCloudState::Admission)
        {
            break vc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finalizer and status yet: {vc:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!vc.status.unwrap().conditions.is_empty());
    assert!(
        server.writes() >= 3,
        "finalizer, objects and status were written"
    );
    running.abort();
}

/// kubectl, if installed, talks to the server through a kubeconfig.
#[tokio::test]
async fn kubectl_works_against_the_server() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not installed: skipped");
        return;
    }
    let (server, _client) = server().await;
    let dir = std::env::temp_dir().join(format!("spalding-apiserver-{}", server.address().port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
    let manifest = dir.join("vc.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: carbynestack.io/v1\nkind: VirtualCloud\nmetadata:\n  name: foo\nspec:\n  parameters:\n    prime: \"198766463529478683931867765928436695041\"\n    gf2nBitLength: 40\n    gf2nStorageSize: 8\n  partners:\n  - name: b\n    endpoint: https://b.example\n",
    )
    .unwrap();
    let kubectl = move |args: &[&str]| {
        let kubeconfig = kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(&args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let manifest = manifest.to_string_lossy().into_owned();
    let created = kubectl(&["create", "--validate=false", "-f", &manifest]).await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let got = kubectl(&[
        "get",
        "vc",
        "foo",
        "-o",
        "jsonpath={.spec.partners[0].endpoint}",
    ])
    .await;
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout), "https://b.example");
    let labelled = kubectl(&["label", "vc", "foo", "x=y"]).await;
    assert!(
        labelled.status.success(),
        "{}",
        String::from_utf8_lossy(&labelled.stderr)
    );
    let listed = kubectl(&["get", "virtualclouds", "-l", "x=y", "-o", "name"]).await;
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "virtualcloud.carbynestack.io/foo"
    );
    let applied = kubectl(&[
        "apply",
        "--server-side",
        "--validate=false",
        "-f",
        &manifest,
    ])
    .await;
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let table = kubectl(&["get", "vc"]).await;
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(String::from_utf8_lossy(&table.stdout).contains("foo"));
    let deleted = kubectl(&["delete", "vc", "foo"]).await;
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

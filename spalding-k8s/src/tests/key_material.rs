//! The MAC key share Secret against the in-memory API server (real HTTP,
//! real 409s): created once from the operating system's CSPRNG, then kept
//! byte for byte across retries, a restarted operator and conflicting
//! creates.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::events::Reporter;
use spalding_core::configuration::{MAC_KEY_SECRET, MAC_KEY_SHARE_2, MAC_KEY_SHARE_P};
use spalding_core::mac::MacKeyShares;
use spalding_core::parameters::carbyne_stack_default;
use spalding_core::ports::{Cluster, CreateOutcome, MockDocumentSigner, VcKey};

use crate::apiserver::{ApiServer, simulation_crds};
use crate::cluster::KubeCluster;
use crate::entropy::OsEntropy;

fn operator(client: kube::Client) -> KubeCluster {
    let reporter = Reporter {
        controller: "spalding".into(),
        instance: None,
    };
    KubeCluster::new(client, reporter, Arc::new(MockDocumentSigner::new()))
}

/// The stored shares and the Secret's resourceVersion.
async fn stored(client: &kube::Client, vc: &VcKey) -> (String, String, String) {
    let secret = Api::<Secret>::namespaced(client.clone(), &vc.namespace)
        .get(MAC_KEY_SECRET)
        .await
        .unwrap();
    let data = secret.data.unwrap();
    let text = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
    (
        text(MAC_KEY_SHARE_P),
        text(MAC_KEY_SHARE_2),
        secret.metadata.resource_version.unwrap(),
    )
}

#[tokio::test]
async fn the_secret_keeps_its_first_share_across_retries_restarts_and_conflicts() {
    let server = ApiServer::start(simulation_crds().unwrap()).await.unwrap();
    let vc = VcKey::new("default", "foo");
    let parameters = carbyne_stack_default();
    let draw = || MacKeyShares::generate(&parameters, &OsEntropy).unwrap();
    let first = draw();

    let before = operator(server.client().unwrap());
    assert!(!before.mac_key_shares_exist(&vc).await.unwrap());
    assert_eq!(
        before.create_mac_key_shares(&vc, &first).await.unwrap(),
        CreateOutcome::Created
    );
    let client = server.client().unwrap();
    let (p, two, version) = stored(&client, &vc).await;
    assert_eq!(
        (p.as_str(), two.as_str()),
        (first.gfp_decimal().as_str(), first.gf2n_hex().as_str())
    );

    // A retry of the same reconcile, then an operator restarted with a new
    // client, then two replicas racing: each drew other shares, none wins.
    let retry = draw();
    assert_eq!(
        before.create_mac_key_shares(&vc, &retry).await.unwrap(),
        CreateOutcome::AlreadyExisted
    );
    let after = operator(server.client().unwrap());
    assert!(after.mac_key_shares_exist(&vc).await.unwrap());
    let (a, b) = (draw(), draw());
    let (ra, rb) = tokio::join!(
        after.create_mac_key_shares(&vc, &a),
        before.create_mac_key_shares(&vc, &b)
    );
    assert_eq!(ra.unwrap(), CreateOutcome::AlreadyExisted);
    assert_eq!(rb.unwrap(), CreateOutcome::AlreadyExisted);
    assert_eq!(
        stored(&client, &vc).await,
        (p, two, version),
        "never rewritten"
    );
    server.shutdown();
}

#[test]
fn shares_from_the_operating_system_are_in_range_and_differ_every_draw() {
    let parameters = carbyne_stack_default();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..256 {
        let shares = MacKeyShares::generate(&parameters, &OsEntropy).unwrap();
        assert!(shares.fits(&parameters));
        assert!(u64::from_str_radix(&shares.gf2n_hex(), 16).unwrap() < 1 << 40);
        assert!(seen.insert(shares.gfp_decimal()), "a gfp share repeated");
    }
}

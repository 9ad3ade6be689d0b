//! [`crate::cluster::KubeCluster::partners`] against the in-memory API
//! server: what it remembers of parsed records and certificates
//! (`cluster::reads`) never hides a change — a replaced certificate, a new
//! status, a removed partner.

use std::sync::Arc;

use kube::api::PostParams;
use kube::runtime::events::Reporter;
use kube::{Api, Resource};
use spalding_core::parameters::carbyne_stack_default;
use spalding_core::partner::{
    CertificateRef, PartnerRecord, PartnerStatus, certificate_config_map_name,
};
use spalding_core::ports::{Cluster, MockDocumentSigner, VcKey};

use super::fixtures::{NS, VC, certificate, endpoint, name, virtual_cloud};
use crate::apiserver::{ApiServer, simulation_crds};
use crate::cluster::KubeCluster;
use crate::crd::VirtualCloud;

#[tokio::test]
async fn a_changed_certificate_or_status_is_read_anew() {
    let server = ApiServer::start(simulation_crds().unwrap()).await.unwrap();
    let mut vc_object = virtual_cloud();
    vc_object.meta_mut().uid = None;
    vc_object.meta_mut().resource_version = None;
    Api::<VirtualCloud>::namespaced(server.client().unwrap(), NS)
        .create(&PostParams::default(), &vc_object)
        .await
        .unwrap();
    let reporter = Reporter {
        controller: "spalding".into(),
        instance: None,
    };
    let cluster = KubeCluster::new(
        server.client().unwrap(),
        reporter,
        Arc::new(MockDocumentSigner::new()),
    );
    let vc = VcKey::new(NS, VC);
    let b = name("b");
    let record = PartnerRecord {
        name: b.clone(),
        endpoint: endpoint("b"),
        parameters: carbyne_stack_default(),
        certificate: CertificateRef {
            name: certificate_config_map_name(VC, &b),
            namespace: NS.into(),
        },
    };
    let first = certificate("b");
    cluster.store_certificate(&vc, &b, &first).await.unwrap();
    cluster.upsert_partner(&vc, &record).await.unwrap();
    let read = cluster.partners(&vc).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].record, record);
    assert_eq!(read[0].status, None);
    let fingerprint = |read: &[spalding_core::partner::StoredPartner]| {
        read[0]
            .certificate
            .as_ref()
            .map(|c| c.fingerprint().clone())
    };
    assert_eq!(fingerprint(&read), Some(first.fingerprint().clone()));
    // Read again unchanged: the same.
    let again = cluster.partners(&vc).await.unwrap();
    assert_eq!(fingerprint(&again), Some(first.fingerprint().clone()));

    // A new certificate in the same ConfigMap is parsed anew.
    let second = certificate("b");
    assert_ne!(first.fingerprint(), second.fingerprint());
    cluster.store_certificate(&vc, &b, &second).await.unwrap();
    let read = cluster.partners(&vc).await.unwrap();
    assert_eq!(fingerprint(&read), Some(second.fingerprint().clone()));

    // A new status of the VirtualCloudPartner is read anew.
    let status = PartnerStatus {
        reachable: true,
        fingerprint: Some(second.fingerprint().clone()),
        ..PartnerStatus::default()
    };
    cluster
        .update_partner_status(&vc, &b, &status)
        .await
        .unwrap();
    let read = cluster.partners(&vc).await.unwrap();
    assert_eq!(read[0].status.as_ref(), Some(&status));

    // Gone from the cluster, gone from the answer.
    cluster.remove_partner(&vc, &b).await.unwrap();
    assert!(cluster.partners(&vc).await.unwrap().is_empty());
    cluster.store_certificate(&vc, &b, &first).await.unwrap();
    cluster.upsert_partner(&vc, &record).await.unwrap();
    let read = cluster.partners(&vc).await.unwrap();
    assert_eq!(read[0].status, None);
    assert_eq!(fingerprint(&read), Some(first.fingerprint().clone()));
}

//! `admit` against the in-memory API server: what it shows, that a wrong
//! fingerprint is refused with nothing created, and the pinned admission.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use spalding_core::parameters::Parameters;

use super::*;
use crate::apiserver::{ApiServer, simulation_crds};
use crate::crd::{CertificateReference, VirtualCloudPartnerSpec};

const NS: &str = "default";

/// A server holding `foo`'s record of partner `b` with `status`, and its
/// certificate ConfigMap; returns it with b's certificate.
async fn server_with_partner(status: serde_json::Value) -> (ApiServer, Certificate) {
    let server = ApiServer::start(simulation_crds().unwrap()).await.unwrap();
    let client = server.client().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["b.example".to_owned()]).unwrap();
    let certificate = Certificate::from_pem(&key.cert.pem()).unwrap();
    let map = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("foo-b-certificate".into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            CERTIFICATE_KEY.to_owned(),
            certificate.pem().to_owned(),
        )])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &map)
        .await
        .unwrap();
    let mut record = VirtualCloudPartner::new(
        "foo-b",
        VirtualCloudPartnerSpec {
            name: "b".into(),
            endpoint: "https://b.example".into(),
            parameters: MpcParameters::from(Parameters::carbyne_stack_default()),
            certificate: CertificateReference {
                name: "foo-b-certificate".into(),
                namespace: NS.into(),
            },
        },
    );
    record.metadata.namespace = Some(NS.into());
    record.metadata.labels = Some(BTreeMap::from([(
        VIRTUAL_CLOUD_LABEL.to_owned(),
        "foo".to_owned(),
    )]));
    let records: Api<VirtualCloudPartner> = Api::namespaced(client.clone(), NS);
    records
        .create(&PostParams::default(), &record)
        .await
        .unwrap();
    let mut status = status;
    if status.get("fingerprint").is_some_and(|f| f == "CURRENT") {
        status["fingerprint"] = json!(certificate.fingerprint().as_str());
    }
    records
        .patch_status(
            "foo-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    (server, certificate)
}

fn fetched() -> serde_json::Value {
    json!({"fingerprint": "CURRENT", "compatible": true, "reachable": true, "partnerAdmittedUs": false, "admitted": false})
}

async fn admissions(server: &ApiServer) -> Vec<VirtualCloudPartnerAdmission> {
    Api::<VirtualCloudPartnerAdmission>::namespaced(server.client().unwrap(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_wrong_fingerprint_is_refused_and_nothing_is_created() {
    let (server, certificate) = server_with_partner(fetched()).await;
    let client = server.client().unwrap();
    let view = show(&client, NS, "foo", "b").await.unwrap();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let error = check(&view, Some(&wrong)).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, AdmitError::FingerprintMismatch { .. }));
    assert!(message.starts_with("refusing to admit b"), "{message}");
    assert!(
        message.contains(certificate.fingerprint().as_str()),
        "{message}"
    );
    assert!(message.contains(&wrong), "{message}");
    assert!(message.contains("nothing was created"), "{message}");
    assert!(admissions(&server).await.is_empty());
}

#[tokio::test]
async fn the_right_fingerprint_creates_an_admission_pinned_to_it() {
    let (server, certificate) = server_with_partner(fetched()).await;
    let client = server.client().unwrap();
    let view = show(&client, NS, "foo", "B").await.unwrap();
    let text = view.to_text();
    assert!(
        text.starts_with("Partner b of virtual cloud default/foo\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  fingerprint:         {}\n",
            certificate.fingerprint()
        )),
        "{text}"
    );
    assert!(
        text.contains("    SANs:              DNS:b.example\n"),
        "{text}"
    );
    assert!(text.contains("  compatible:          yes\n"), "{text}");
    assert!(text.contains("  admission:           none\n"), "{text}");

    let given = certificate
        .fingerprint()
        .as_str()
        .to_ascii_uppercase()
        .replace("SHA256", "sha256");
    let pinned = check(&view, Some(&given)).unwrap();
    assert_eq!(pinned, certificate.fingerprint().as_str());
    let done = admit(&client, &view, &pinned).await.unwrap();
    assert_eq!(
        done,
        Admitted::Created {
            name: "foo-b".into(),
            fingerprint: pinned.clone()
        }
    );
    let stored = admissions(&server).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].spec.partner, "foo-b");
    assert_eq!(stored[0].spec.fingerprint.as_deref(), Some(pinned.as_str()));

    // Admitting again is a no-op; an admission for another certificate is refused.
    let again = show(&client, NS, "foo", "b").await.unwrap();
    let pinned = check(&again, None).unwrap();
    assert_eq!(
        admit(&client, &again, &pinned).await.unwrap(),
        Admitted::AlreadyAdmitted {
            name: "foo-b".into()
        }
    );
    let mut other = again.clone();
    other.fingerprint = Some(format!("sha256:{}", "1".repeat(64)));
    let error = check(&other, None).unwrap_err().to_string();
    assert!(error.contains("admissions cannot change"), "{error}");
}

#[tokio::test]
async fn unknown_and_unfetched_partners_are_refused_with_the_reason() {
    let (server, _) = server_with_partner(json!({
        "reachable": false, "lastFetchError": "connection refused",
        "admitted": false, "compatible": false, "partnerAdmittedUs": false
    }))
    .await;
    let client = server.client().unwrap();
    let missing = show(&client, NS, "foo", "c").await.unwrap_err().to_string();
    assert!(missing.contains("has no partner c"), "{missing}");
    let view = show(&client, NS, "foo", "b").await.unwrap();
    let error = check(&view, None).unwrap_err().to_string();
    assert!(error.contains("has not been fetched yet"), "{error}");
    assert!(error.contains("connection refused"), "{error}");
    assert!(admissions(&server).await.is_empty());
}

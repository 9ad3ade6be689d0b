//! Trust across fetches, through the core's real `Reconciler` on an
//! `InMemoryCluster` with the HTTPS transport: a replayed lower sequence
//! number is refused as a rollback, and a certificate other than the admitted
//! one is reported as `CertificateChanged`. Also: the document parser never
//! panics, and fingerprints equal OpenSSL's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use spalding_core::Reconciler;
use spalding_core::condition::Timestamp;
use spalding_core::machine::{Fetch, LocalIdentity};
use spalding_core::memory::{InMemoryCluster, InsecureSeededEntropy, Readiness, SimulatedLauncher};
use spalding_core::name::PartyName;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::VcKey;
use spalding_core::spec::{Endpoint, PartnerEntry, VirtualCloudSpec};
use spalding_k8s::signing::verify_signature;
use spalding_k8s::transport::parse_document;
use support::{Documents, Party, Pki, start};

const VC: &str = "vc-one";

struct Local {
    vc: VcKey,
    cluster: Arc<InMemoryCluster>,
    reconciler: Reconciler,
}

/// Party A, whose VC lists party B at `b_endpoint`, fetching over HTTPS.
fn local(pki: &Pki, b: &PartyName, b_endpoint: &Endpoint) -> Local {
    let a = Party::new("party-a");
    let identity = LocalIdentity {
        name: a.name.clone(),
        endpoint: Endpoint::new("https://party-a.example").unwrap(),
        certificate: a.identity.certificate().clone(),
    };
    let vc = VcKey::new("default", VC);
    let cluster = Arc::new(InMemoryCluster::new(Readiness::Immediate));
    cluster.apply_virtual_cloud(
        &vc,
        VirtualCloudSpec {
            parameters: ValidatedParameters::carbyne_stack_default().to_wire(),
            partners: vec![PartnerEntry {
                name: b.to_string(),
                endpoint: b_endpoint.to_string(),
            }],
        },
    );
    let reconciler = Reconciler::new(
        identity,
        cluster.clone(),
        Arc::new(pki.transport()),
        Arc::new(SimulatedLauncher::new()),
        Arc::new(InsecureSeededEntropy::new(1)),
    );
    Local {
        vc,
        cluster,
        reconciler,
    }
}

fn now() -> Timestamp {
    Timestamp::new("2030-01-01T00:00:00Z")
}

#[tokio::test]
async fn a_replayed_lower_sequence_number_is_refused_as_rollback() {
    let pki = Pki::new(true);
    let b = Party::new("party-b");
    let documents = Arc::new(Documents::default());
    let running = start(&pki, documents.clone()).await;
    let local = local(&pki, &b.name, &running.endpoint);

    documents.set(VC, b.document(VC, &running.endpoint, 5));
    local.reconciler.reconcile(&local.vc, now()).await.unwrap();
    let status = local.cluster.partner_status(&local.vc, &b.name).unwrap();
    assert_eq!(status.sequence, Some(5));

    // An older, validly signed document replayed by someone in the path.
    documents.set(VC, b.document(VC, &running.endpoint, 4));
    let observed = local
        .reconciler
        .observe(&local.vc, now())
        .await
        .unwrap()
        .unwrap();
    match &observed.partners[0].fetch {
        Fetch::Failed(reason) => assert!(reason.contains("rollback"), "{reason}"),
        other => panic!("expected a rollback refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_other_than_the_admitted_one_is_reported_as_changed() {
    let pki = Pki::new(true);
    let b = Party::new("party-b");
    let documents = Arc::new(Documents::default());
    let running = start(&pki, documents.clone()).await;
    let local = local(&pki, &b.name, &running.endpoint);

    documents.set(VC, b.document(VC, &running.endpoint, 1));
    local.reconciler.reconcile(&local.vc, now()).await.unwrap();
    local
        .cluster
        .admit(&local.vc, &b.name, Some(b.identity.fingerprint().clone()));
    local.reconciler.reconcile(&local.vc, now()).await.unwrap();
    assert!(
        local
            .cluster
            .partner_status(&local.vc, &b.name)
            .unwrap()
            .admitted
    );

    // Party B (or someone claiming to be it) now signs with another certificate.
    let impostor = Party {
        name: b.name.clone(),
        identity: spalding_k8s::identity::VcpIdentity::generate("party-b", &[]).unwrap(),
    };
    let document = impostor.document(VC, &running.endpoint, 2);
    verify_signature(&document).unwrap();
    documents.set(VC, document);
    local.reconciler.reconcile(&local.vc, now()).await.unwrap();
    let status = local.cluster.partner_status(&local.vc, &b.name).unwrap();
    assert!(!status.admitted);
    assert_eq!(
        status.fingerprint.as_ref(),
        Some(impostor.identity.fingerprint())
    );
    let vc_status = format!("{:?}", local.cluster.status(&local.vc).unwrap());
    assert!(vc_status.contains("CertificateChanged"), "{vc_status}");
}

#[test]
fn fingerprint_equals_openssl() {
    let party = Party::new("party-a");
    let dir = std::env::temp_dir().join(format!("spalding-fp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cert.pem");
    std::fs::write(&file, party.identity.certificate().pem()).unwrap();
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&file)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let Some(output) = output.ok().filter(|o| o.status.success()) else {
        eprintln!("openssl not available; skipping");
        return;
    };
    let stdout = String::from_utf8(output.stdout).unwrap();
    let theirs: String = stdout
        .split('=')
        .nth(1)
        .unwrap()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase();
    assert_eq!(
        party.identity.fingerprint().hex().to_ascii_lowercase(),
        theirs
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_and_verifying_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(document) = parse_document(&bytes) {
            let _ = verify_signature(&document);
        }
    }

    #[test]
    fn mutating_a_signed_document_never_panics(position in 0usize..4096, byte in any::<u8>()) {
        let json = signed_json();
        let mut bytes = json.clone();
        let index = position % bytes.len();
        bytes[index] = byte;
        if let Ok(document) = parse_document(&bytes) {
            let verdict = verify_signature(&document);
            if bytes == json {
                prop_assert!(verdict.is_ok());
            }
        }
    }
}

fn signed_json() -> Vec<u8> {
    static JSON: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    JSON.get_or_init(|| {
        let party = Party::new("party-b");
        let endpoint = Endpoint::new("https://party-b.example").unwrap();
        serde_json::to_vec(&party.document(VC, &endpoint, 1)).unwrap()
    })
    .clone()
}

//! The reconciler against mockall mocks of the ports: the exact calls one
//! reconcile makes, in order, and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::executor::block_on;
use mockall::Sequence;
use mockall::predicate::eq;
use num_bigint::BigUint;

use super::*;
use crate::certificate::Certificate;
use crate::document::{DocumentBody, MemberView, PROTOCOL_VERSION, PartnerDocument};
use crate::memory::{Federation, Readiness};
use crate::parameters::ValidatedParameters;
use crate::ports::{
    MockCluster, MockEntropy, MockMpcLauncher, MockPartnerTransport, VirtualCloudObject,
};
use crate::spec::{Endpoint, PartnerEntry, VirtualCloudSpec, VirtualCloudStatus};

fn certificate(host: &str) -> Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = rcgen::CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    Certificate::from_pem(&pem).unwrap()
}

fn identity(name: &str) -> LocalIdentity {
    LocalIdentity {
        name: name.parse().unwrap(),
        endpoint: Endpoint::new(&format!("https://{name}.example")).unwrap(),
        certificate: certificate(&format!("{name}.example")),
    }
}

fn reconciler(
    me: LocalIdentity,
    cluster: MockCluster,
    transport: MockPartnerTransport,
    launcher: MockMpcLauncher,
    entropy: MockEntropy,
) -> Reconciler {
    Reconciler::new(
        me,
        Arc::new(cluster),
        Arc::new(transport),
        Arc::new(launcher),
        Arc::new(entropy),
    )
}

/// The first reconcile of a new VC: fetch the partner, store its certificate
/// and record, write its status, publish our document, write our status.
#[test]
fn first_reconcile_records_the_partner_and_publishes() {
    let vc = VcKey::new("ns", "vc");
    let me = identity("alpha");
    let bravo = identity("bravo");
    let spec = VirtualCloudSpec {
        parameters: ValidatedParameters::carbyne_stack_default().to_wire(),
        partners: vec![PartnerEntry {
            name: "Bravo".to_owned(),
            endpoint: "https://bravo.example/".to_owned(),
        }],
    };
    let document = PartnerDocument {
        body: DocumentBody {
            protocol: PROTOCOL_VERSION.to_owned(),
            virtual_cloud: "vc".to_owned(),
            party: bravo.name.clone(),
            endpoint: bravo.endpoint.clone(),
            parameters: ValidatedParameters::carbyne_stack_default(),
            certificate: bravo.certificate.clone(),
            fingerprint: bravo.certificate.fingerprint().clone(),
            // Bravo lists us but has not fetched nor admitted us yet.
            members: vec![
                MemberView {
                    name: me.name.clone(),
                    endpoint: me.endpoint.clone(),
                    fingerprint: None,
                    admitted: false,
                },
                MemberView {
                    name: bravo.name.clone(),
                    endpoint: bravo.endpoint.clone(),
                    fingerprint: Some(bravo.certificate.fingerprint().clone()),
                    admitted: true,
                },
            ]
            .into(),
            state: State::Admission,
        },
        sequence: 3,
        signature: None,
    };

    let mut cluster = MockCluster::new();
    let object = VirtualCloudObject {
        generation: Some(1),
        spec,
        status: VirtualCloudStatus::default(),
    };
    cluster
        .expect_virtual_cloud()
        .with(eq(vc.clone()))
        .times(1)
        .returning(move |_| Ok(Some(object.clone())));
    cluster.expect_partners().times(1).returning(|_| Ok(vec![]));
    cluster
        .expect_admissions()
        .times(1)
        .returning(|_| Ok(vec![]));
    cluster
        .expect_mac_key_shares_exist()
        .times(1)
        .returning(|_| Ok(false));
    cluster
        .expect_configuration()
        .times(1)
        .returning(|_| Ok(None));
    cluster.expect_services().times(1).returning(|_| Ok(None));
    cluster.expect_gateways().times(1).returning(|_| Ok(None));
    cluster
        .expect_published_document()
        .times(1)
        .returning(|_| Ok(None));
    let mut launcher = MockMpcLauncher::new();
    launcher
        .expect_key_generation()
        .times(1)
        .returning(|_| Ok(None));
    let mut transport = MockPartnerTransport::new();
    let served = document.clone();
    transport
        .expect_fetch()
        .withf(|vc, endpoint| vc == "vc" && endpoint.as_str() == "https://bravo.example")
        .times(1)
        .returning(move |_, _| Ok(served.clone()));

    let mut order = Sequence::new();
    let bravo_fp = bravo.certificate.fingerprint().clone();
    let bravo_cert = bravo.certificate.clone();
    cluster
        .expect_store_certificate()
        .withf(move |_, partner, cert| partner.as_str() == "bravo" && *cert == bravo_cert)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    cluster
        .expect_upsert_partner()
        .withf(|_, record| {
            record.name.as_str() == "bravo"
                && record.endpoint.as_str() == "https://bravo.example"
                && record.certificate.name == "vc-bravo-cert"
                && record.certificate.namespace == "ns"
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    cluster
        .expect_update_partner_status()
        .withf(move |_, partner, status| {
            partner.as_str() == "bravo"
                && !status.admitted
                && status.reachable
                && status.compatible
                && !status.partner_admitted_us
                && status.fingerprint.as_ref() == Some(&bravo_fp)
                && status.sequence == Some(3)
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    let me_name = me.name.clone();
    cluster
        .expect_publish_document()
        .withf(move |_, body| {
            body.party == me_name
                && body.members.len() == 2
                && body
                    .members
                    .iter()
                    .all(|m| m.admitted == (m.name == me_name))
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    cluster
        .expect_update_status()
        .withf(|_, status| {
            status.state == State::Admission
                && status.player_id == Some(0)
                && status.player_count == Some(2)
                && status.observed_generation == Some(1)
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));

    let reconciler = reconciler(me, cluster, transport, launcher, MockEntropy::new());
    let outcome = block_on(reconciler.reconcile(&vc, Timestamp::new("t0"))).unwrap();
    assert_eq!(outcome.state, Some(State::Admission));
    assert_eq!(outcome.plan.actions.len(), 5);
}

/// A formed VC whose MAC Secret is missing: the reconciler draws shares from
/// the entropy port and creates them, create-only; an existing Secret (a race
/// with another writer) is not an error, and nothing else is written.
#[test]
fn missing_mac_share_is_created_from_the_entropy_port_only() {
    let federation = Federation::new(
        VcKey::new("ns", "vc"),
        vec![identity("alpha"), identity("bravo")],
        &ValidatedParameters::carbyne_stack_default(),
        Readiness::Immediate,
        1,
    );
    for _ in 0..12 {
        block_on(federation.round(&Timestamp::new("t"))).unwrap();
        federation.admit_all();
    }
    assert!(federation.all_ready());
    let vc = federation.vc().clone();
    // What party 0's cluster holds, read up front (the mocks answer with it).
    let real = federation.parties()[0].cluster.clone();
    let object = block_on(real.virtual_cloud(&vc)).unwrap();
    let partners = block_on(real.partners(&vc)).unwrap();
    let admissions = block_on(real.admissions(&vc)).unwrap();
    let configuration = block_on(real.configuration(&vc)).unwrap();
    let services = block_on(real.services(&vc)).unwrap();
    let gateways = block_on(real.gateways(&vc)).unwrap();
    let published = block_on(real.published_document(&vc)).unwrap();
    let key_generation = block_on(federation.parties()[0].launcher.key_generation(&vc)).unwrap();
    let mut cluster = MockCluster::new();
    cluster
        .expect_virtual_cloud()
        .returning(move |_| Ok(object.clone()));
    cluster
        .expect_partners()
        .returning(move |_| Ok(partners.clone()));
    cluster
        .expect_admissions()
        .returning(move |_| Ok(admissions.clone()));
    cluster
        .expect_mac_key_shares_exist()
        .returning(|_| Ok(false));
    cluster
        .expect_configuration()
        .returning(move |_| Ok(configuration.clone()));
    cluster
        .expect_services()
        .returning(move |_| Ok(services.clone()));
    cluster
        .expect_gateways()
        .returning(move |_| Ok(gateways.clone()));
    cluster
        .expect_published_document()
        .returning(move |_| Ok(published.clone()));
    cluster
        .expect_create_mac_key_shares()
        .withf(|_, shares| {
            shares.gfp_decimal() == BigUint::from_bytes_be(&[1u8; 16]).to_string()
                && shares.gf2n_hex() == "101010101"
        })
        .times(1)
        .returning(|_, _| Ok(crate::ports::CreateOutcome::AlreadyExisted));
    // A new reconciler is a restarted process: it never saw the partner's
    // documents between the sequence number stored and the current one
    // (state-only republishes its predecessor saw and did not record), so
    // it records the current one, once.
    cluster
        .expect_update_partner_status()
        .withf(|_, partner, status| partner.as_str() == "bravo" && status.sequence.is_some())
        .times(..=1)
        .returning(|_, _, _| Ok(()));
    let mut launcher = MockMpcLauncher::new();
    launcher
        .expect_key_generation()
        .returning(move |_| Ok(key_generation.clone()));
    let transport = crate::memory::InProcessTransport::new();
    for party in federation.parties() {
        transport.register(party.identity.endpoint.clone(), party.cluster.clone());
    }
    let mut entropy = MockEntropy::new();
    entropy.expect_fill().returning(|dest| {
        dest.fill(1);
        Ok(())
    });
    let reconciler = Reconciler::new(
        federation.parties()[0].identity.clone(),
        Arc::new(cluster),
        Arc::new(transport),
        Arc::new(launcher),
        Arc::new(entropy),
    );
    let outcome = block_on(reconciler.reconcile(&vc, Timestamp::new("t1"))).unwrap();
    let others: Vec<_> = outcome
        .plan
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::UpdatePartnerStatus { .. }))
        .collect();
    assert_eq!(others, vec![&Action::CreateMacKeyShares]);
    assert_eq!(outcome.state, Some(State::Ready));
}

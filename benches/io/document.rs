//! Benchmarks of what every partner fetch costs besides the network: parsing
//! a signed partner document (JSON, certificate, parameters), checking its
//! signature, and verifying it against our spec; and fingerprinting a
//! certificate. Documents list 3 and 16 members, the others with
//! fingerprints of their own.
//!
//! Run: `cargo bench -p benches-io --bench document`

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use spalding_core::certificate::{Certificate, Fingerprint};
use spalding_core::document::MemberView;
use spalding_core::name::PartyName;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::DocumentSigner;
use spalding_core::spec::{Endpoint, Partner};
use spalding_k8s::identity::VcpIdentity;
use spalding_k8s::sample::single_party_body;
use spalding_k8s::signing::{VcpSigner, verify_signature};
use spalding_k8s::transport::parse_document;

/// The serialised signed document of a party listing `members` members, and
/// the partner entry our spec has for it.
fn signed_document(members: usize) -> (Vec<u8>, Partner) {
    let identity =
        VcpIdentity::generate("party-000", &["party-000.example".to_owned()]).expect("identity");
    let name: PartyName = "party-000".parse().expect("name");
    let endpoint = Endpoint::new("https://party-000.example").expect("endpoint");
    let mut body = single_party_body(
        "vc",
        &name,
        &endpoint,
        &identity,
        &ValidatedParameters::carbyne_stack_default(),
    );
    body.members.edit(|list| {
        for i in 1..members {
            let der = format!("certificate of party {i}");
            list.push(MemberView {
                name: format!("party-{i:03}").parse().expect("name"),
                endpoint: Endpoint::new(&format!("https://party-{i:03}.example"))
                    .expect("endpoint"),
                fingerprint: Some(Fingerprint::of_der(der.as_bytes())),
                admitted: true,
            });
        }
    });
    let document = VcpSigner::new(&identity).sign(&body, 7).expect("sign");
    let bytes = serde_json::to_vec(&document).expect("json");
    (bytes, Partner { name, endpoint })
}

fn bench_document(c: &mut Criterion) {
    let mut group = c.benchmark_group("document");
    for members in [3, 16] {
        let (bytes, partner) = signed_document(members);
        let document = parse_document(&bytes).expect("parse");
        group.bench_with_input(BenchmarkId::new("parse", members), &bytes, |b, bytes| {
            b.iter(|| parse_document(black_box(bytes)).expect("parse"))
        });
        group.bench_with_input(
            BenchmarkId::new("signature", members),
            &document,
            |b, document| b.iter(|| verify_signature(black_box(document)).expect("signature")),
        );
        group.bench_with_input(
            BenchmarkId::new("parse_signature_verify", members),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let document = parse_document(black_box(bytes)).expect("parse");
                    verify_signature(&document).expect("signature");
                    document.verify("vc", &partner).expect("verify")
                })
            },
        );
    }
    group.finish();
}

fn bench_fingerprint(c: &mut Criterion) {
    let identity =
        VcpIdentity::generate("party-000", &["party-000.example".to_owned()]).expect("identity");
    let certificate = identity.certificate().clone();
    let pem = certificate.pem().to_owned();
    let mut group = c.benchmark_group("fingerprint");
    group.bench_function("of_der", |b| {
        b.iter(|| Fingerprint::of_der(black_box(certificate.der())))
    });
    group.bench_function("certificate_from_pem", |b| {
        b.iter(|| Certificate::from_pem(black_box(&pem)).expect("pem"))
    });
    group.finish();
}

criterion_group!(benches, bench_document, bench_fingerprint);
criterion_main!(benches);

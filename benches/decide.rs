//! Benchmarks of the pure core: `decide` at 3, 16 and 64 partners, and the
//! parameter compatibility check.
//!
//! `decide/at_rest/N` is the steady state of a formed VC (every reconcile
//! after `ready` pays it); `decide/forming/N` is a reconcile that sees every
//! partner's document for the first time and plans records, statuses and the
//! published document. Targets (issue 2): median < 1 µs at 3 partners and
//! < 20 µs at 64 for the steady state, cost linear in partners.
//!
//! Run: `cargo bench -p benches --bench decide`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use spalding_core::certificate::Certificate;
use spalding_core::condition::Timestamp;
use spalding_core::decide;
use spalding_core::machine::{LocalIdentity, Observed};
use spalding_core::memory::{Federation, Readiness};
use spalding_core::parameters::{Parameters, ValidatedParameters, compatibility};
use spalding_core::ports::VcKey;
use spalding_core::spec::Endpoint;

const PARTNERS: [usize; 3] = [3, 16, 64];

#[allow(clippy::expect_used)]
fn identity(i: usize) -> LocalIdentity {
    let key = rcgen::KeyPair::generate().expect("key");
    let pem = rcgen::CertificateParams::new(vec![format!("party-{i}.example")])
        .expect("params")
        .self_signed(&key)
        .expect("certificate")
        .pem();
    LocalIdentity {
        name: format!("party-{i:03}").parse().expect("name"),
        endpoint: Endpoint::new(&format!("https://party-{i}.example")).expect("endpoint"),
        certificate: Certificate::from_pem(&pem).expect("pem"),
    }
}

/// Observations of party 0 in a federation of `partners + 1` parties: the
/// first one (nothing stored yet, every partner published) and one at rest.
#[allow(clippy::expect_used, clippy::panic)]
fn observations(partners: usize) -> (Observed, Observed) {
    let now = Timestamp::new("2026-11-30T00:00:00Z");
    let federation = Federation::new(
        VcKey::new("bench", "vc"),
        (0..=partners).map(identity).collect(),
        &ValidatedParameters::carbyne_stack_default(),
        Readiness::Immediate,
        1,
    );
    let observe = |f: &Federation| {
        block_on(f.parties()[0].reconciler.observe(f.vc(), now.clone()))
            .expect("observe")
            .expect("vc exists")
    };
    // Every party but the first publishes; the first then sees them all.
    for index in 1..=partners {
        block_on(federation.reconcile(index, now.clone())).expect("reconcile");
    }
    let forming = observe(&federation);
    // Form the VC, then settle: once everyone is ready, one more round lets
    // every party record the others' final documents.
    for _ in 0..24 {
        let outcomes = block_on(federation.round(&now)).expect("round");
        federation.admit_all();
        if federation.all_ready() && outcomes.iter().all(|o| o.plan.is_empty()) {
            let at_rest = observe(&federation);
            assert!(decide(&at_rest).is_empty(), "not at rest");
            return (forming, at_rest);
        }
    }
    panic!("the federation did not come to rest");
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for partners in PARTNERS {
        let (forming, at_rest) = observations(partners);
        group.bench_with_input(BenchmarkId::new("at_rest", partners), &at_rest, |b, obs| {
            b.iter(|| decide(black_box(obs)))
        });
        group.bench_with_input(BenchmarkId::new("forming", partners), &forming, |b, obs| {
            b.iter(|| decide(black_box(obs)))
        });
    }
    group.finish();
}

#[allow(clippy::expect_used)]
fn bench_compatibility(c: &mut Criterion) {
    let ours = ValidatedParameters::carbyne_stack_default();
    let same = ours.clone();
    let mut wire: Parameters = ours.to_wire();
    wire.gf2n_bit_length = 64;
    wire.gf2n_storage_size = 16;
    let different = wire.validate().expect("valid");
    let mut group = c.benchmark_group("compatibility");
    group.bench_function("equal", |b| {
        b.iter(|| compatibility(black_box(&ours), black_box(&same)))
    });
    group.bench_function("two_mismatches", |b| {
        b.iter(|| compatibility(black_box(&ours), black_box(&different)))
    });
    group.finish();
}

criterion_group!(benches, bench_decide, bench_compatibility);
criterion_main!(benches);

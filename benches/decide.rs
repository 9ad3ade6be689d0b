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

use benches::{PARTNERS, observations};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use spalding_core::decide;
use spalding_core::parameters::{Parameters, ValidatedParameters, compatibility};

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

//! Criterion benchmarks of Spalding; run them with `cargo bench -p benches`.

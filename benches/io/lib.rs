//! Nothing but a home for the `document` benchmark, which needs the I/O crate
//! (`spalding-k8s`) in release; kept apart from the `benches` package so the
//! benchmarks of the pure core build without it. Run it with
//! `cargo bench -p benches-io --bench document`.

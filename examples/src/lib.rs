//! Runnable examples of Spalding; see `examples/*.rs` and run them with `cargo run -p examples --example <name>`.

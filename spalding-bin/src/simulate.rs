//! The `spalding simulate` command: parses its arguments and runs
//! [`spalding_k8s::simulation`], printing progress as it goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use spalding_k8s::simulation::{self, Options};

/// Arguments of `simulate`.
#[derive(Debug, Args)]
pub struct Simulate {
    /// Number of parties.
    #[arg(long, default_value_t = 3)]
    parties: usize,
    /// Admit every partner automatically, pinned to its fingerprint.
    #[arg(long)]
    auto_admit: bool,
    /// Write every object of every party's API server here as YAML, one folder per party.
    #[arg(long)]
    emit: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// Runs the simulation; `Err` (a non-zero exit) when not every party got ready.
pub async fn run(args: Simulate) -> Result<String, String> {
    let options = Options {
        parties: args.parties,
        auto_admit: args.auto_admit,
        emit: args.emit,
        timeout: Duration::from_secs(args.timeout),
        ..Options::default()
    };
    let print: simulation::Print = Arc::new(|line: &str| println!("{line}"));
    let report = simulation::run(options, print)
        .await
        .map_err(|e| e.to_string())?;
    if report.ready {
        Ok(report.to_text())
    } else {
        Err(report.to_text())
    }
}

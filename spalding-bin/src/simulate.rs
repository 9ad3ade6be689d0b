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
    /// Once every party is ready, stay at rest this long (e.g. 30s) and
    /// report the writes and partner fetches meanwhile.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    linger: Duration,
    /// The controllers' partner refresh interval at rest.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    refresh_interval: Duration,
    /// How soon a VC that is not ready, or whose last reconcile acted, is
    /// reconciled again (its partners' documents fetched).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    forming_interval: Duration,
    /// How long the controllers wait after a watch event before reconciling.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    debounce: Duration,
}

/// Runs the simulation; `Err` (a non-zero exit) when not every party got ready.
pub async fn run(args: Simulate) -> Result<String, String> {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        // Logs only when RUST_LOG asks for them (profiling: timestamps of
        // reconciles and API writes), on stderr apart from the progress lines.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let options = Options {
        parties: args.parties,
        auto_admit: args.auto_admit,
        emit: args.emit,
        timeout: Duration::from_secs(args.timeout),
        linger: args.linger,
        refresh_interval: args.refresh_interval,
        forming_interval: args.forming_interval,
        debounce: args.debounce,
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

//! The hidden `spalding apiserver` command: runs the in-memory Kubernetes
//! API server with Spalding's and the simulated foundation services' CRDs
//! and writes its kubeconfig, until interrupted. It exists for measuring
//! `spalding operator` on its own (`benches/operator-idle-rss.sh`).

use std::path::PathBuf;

use clap::Args;
use spalding_k8s::apiserver::{ApiServer, simulation_crds};

/// Arguments of `apiserver`.
#[derive(Debug, Args)]
pub struct ApiServerArgs {
    /// Write the kubeconfig of the server here.
    #[arg(long)]
    kubeconfig: PathBuf,
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(args: ApiServerArgs) -> Result<String, String> {
    let crds = simulation_crds().map_err(|e| e.to_string())?;
    let server = ApiServer::start(crds).await.map_err(|e| e.to_string())?;
    std::fs::write(&args.kubeconfig, server.kubeconfig())
        .map_err(|e| format!("{}: {e}", args.kubeconfig.display()))?;
    eprintln!("in-memory API server on {}", server.url());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(|e| e.to_string())?,
        _ = terminate.recv() => {}
    }
    server.shutdown();
    Ok(format!("{} writes received", server.writes()))
}

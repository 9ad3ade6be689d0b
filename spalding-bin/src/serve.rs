//! The hidden `spalding serve-document` command: generates (or loads) an
//! identity, signs a single-party document and serves it with the
//! partner-info server until interrupted. It exists for the partner-endpoint
//! benchmark (`benches/partner-endpoint.sh`) and for demos; with `--write-dir`
//! it also writes the document and the TLS files so nginx can serve the same.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use spalding_core::name::PartyName;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::DocumentSigner;
use spalding_core::spec::Endpoint;
use spalding_k8s::identity::VcpIdentity;
use spalding_k8s::sample::single_party_body;
use spalding_k8s::server::{PartnerInfoServer, server_tls_config};
use spalding_k8s::signing::VcpSigner;

/// Arguments of `serve-document`.
#[derive(Debug, Args)]
pub struct ServeDocument {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// The Virtual Cloud name.
    #[arg(long, default_value = "bench")]
    virtual_cloud: String,
    /// The party name.
    #[arg(long, default_value = "party-a")]
    party: String,
    /// The endpoint the document claims (defaults to https://<listen>).
    #[arg(long)]
    endpoint: Option<String>,
    /// Write document.json, tls.crt and tls.key here before serving.
    #[arg(long)]
    write_dir: Option<PathBuf>,
}

/// Runs the server until Ctrl-C.
pub async fn run(args: ServeDocument) -> Result<String, String> {
    let endpoint = Endpoint::new(
        &args
            .endpoint
            .unwrap_or_else(|| format!("https://{}", args.listen)),
    )
    .map_err(|e| e.to_string())?;
    let party = PartyName::new(&args.party).map_err(|e| e.to_string())?;
    let host = endpoint
        .authority()
        .rsplit_once(':')
        .map_or(endpoint.authority(), |(host, _)| host)
        .to_owned();
    let identity = VcpIdentity::generate(party.as_str(), &[host, "localhost".to_owned()])
        .map_err(|e| e.to_string())?;
    let body = single_party_body(
        &args.virtual_cloud,
        &party,
        &endpoint,
        &identity,
        &ValidatedParameters::carbyne_stack_default(),
    );
    let document = VcpSigner::new(&identity)
        .sign(&body, 1)
        .map_err(|e| e.to_string())?;
    if let Some(dir) = &args.write_dir {
        let pems = identity.pems();
        let json = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.join(name), bytes).map_err(|e| format!("{}: {e}", dir.display()))
        };
        write("document.json", &json)?;
        write("tls.crt", pems.tls_crt.as_bytes())?;
        write("tls.key", pems.tls_key.as_bytes())?;
    }
    let tls = server_tls_config(&identity).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("{}: {e}", args.listen))?;
    eprintln!(
        "serving {} at {} (fingerprint {})",
        args.virtual_cloud,
        endpoint.document_url(&args.virtual_cloud),
        identity.fingerprint()
    );
    let documents = std::collections::HashMap::from([(args.virtual_cloud.clone(), document)]);
    PartnerInfoServer::new(Arc::new(documents))
        .serve_tls(listener, tls, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok("stopped".to_owned())
}

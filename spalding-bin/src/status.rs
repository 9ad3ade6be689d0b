//! `spalding status [<vc>]`: the VirtualClouds of a namespace and their
//! partners, read through kubeconfig and contexts like kubectl; the report
//! and its rendering are [`spalding_k8s::status`].

use std::path::PathBuf;

use clap::Args;

use crate::Output;

/// Arguments of `spalding status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The VirtualCloud to show (all in the namespace when omitted).
    virtual_cloud: Option<String>,
    /// The namespace (default: the context's namespace).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// The kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Reads and renders the status.
pub async fn run(args: StatusArgs) -> Result<String, String> {
    use spalding_k8s::status;
    let client = status::client(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let reports = status::collect(
        &client,
        args.namespace.as_deref(),
        args.virtual_cloud.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    match args.output {
        Output::Text => Ok(status::render_text(&reports).trim_end().to_owned()),
        Output::Json => serde_json::to_string_pretty(&reports).map_err(|e| e.to_string()),
    }
}

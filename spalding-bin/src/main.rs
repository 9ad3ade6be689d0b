//! The `spalding` command. Parses arguments and wires the libraries; the work
//! happens in `spalding-core` and `spalding-k8s`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use spalding_core::certificate::Certificate;
use spalding_core::parameters::{Parameters, ValidatedParameters};

mod admit;
mod apiserver;
mod operator;
mod serve;
mod simulate;
mod status;

/// Spalding: form Carbyne Stack Virtual Clouds among independent parties.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate MPC parameters and print them normalised, with r and rInv derived.
    Parameters {
        /// The gfp prime, decimal.
        #[arg(long, default_value = spalding_core::parameters::CARBYNE_STACK_DEFAULT_PRIME)]
        prime: String,
        /// Montgomery r, decimal (derived when omitted).
        #[arg(long)]
        r: Option<String>,
        /// r^-1 mod prime, decimal (derived when omitted).
        #[arg(long)]
        r_inv: Option<String>,
        /// gf2n bit length.
        #[arg(long, default_value_t = 40)]
        gf2n_bit_length: u32,
        /// gf2n storage size in bytes.
        #[arg(long, default_value_t = 8)]
        gf2n_storage_size: u32,
    },
    /// Print the sha256 fingerprint of a PEM certificate, as operators admit it.
    Fingerprint {
        /// The PEM file holding exactly one certificate.
        file: PathBuf,
    },
    /// Print the custom resource definitions (VirtualCloud, VirtualCloudPartner,
    /// VirtualCloudPartnerAdmission) as YAML, as `deploy/crds.yaml` holds them.
    Crd,
    /// Work with partners.
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Run the operator: reconcile VirtualClouds, serve partner-info documents
    /// and probes, until SIGTERM or Ctrl-C.
    Operator(Box<operator::OperatorArgs>),
    /// Show VirtualClouds and their partners: state, player number, conditions,
    /// what each waits for, and every partner's admission and reachability.
    Status(status::StatusArgs),
    /// Admit a partner: show its fingerprint, certificate, parameters and
    /// compatibility, confirm, and create the VirtualCloudPartnerAdmission
    /// pinned to its fingerprint.
    Admit(admit::AdmitArgs),
    /// Form a Virtual Cloud of N simulated parties in this process: in-memory
    /// API servers, the real operator and partner-info servers on loopback.
    Simulate(simulate::Simulate),
    /// Serve one signed single-party document (benchmarks and demos).
    #[command(hide = true)]
    ServeDocument(serve::ServeDocument),
    /// Run the in-memory Kubernetes API server (benchmarks).
    #[command(hide = true)]
    Apiserver(apiserver::ApiServerArgs),
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Fetch, verify and show a partner's document, before admitting it.
    Inspect {
        /// The partner's endpoint, e.g. https://spalding.party-b.example.
        endpoint: String,
        /// The Virtual Cloud name.
        #[arg(long)]
        virtual_cloud: String,
        /// Extra trusted CA certificates (PEM), added to the Web PKI roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Our parameters (JSON, as in the VirtualCloud spec) to check
        /// compatibility against; the Carbyne Stack defaults otherwise.
        #[arg(long)]
        parameters: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Development only: allow an http:// endpoint.
        #[arg(long)]
        allow_plain_http: bool,
        /// Allow an endpoint on a loopback, link-local or private address.
        #[arg(long)]
        allow_private_addresses: bool,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::Parameters {
            prime,
            r,
            r_inv,
            gf2n_bit_length,
            gf2n_storage_size,
        } => {
            let wire = Parameters {
                prime,
                r,
                r_inv,
                word_size: None,
                gf2n_bit_length,
                gf2n_storage_size,
            };
            let valid = wire.validate().map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&valid.to_wire()).map_err(|e| e.to_string())
        }
        Command::Fingerprint { file } => {
            let pem =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let certificate =
                Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(certificate.fingerprint().to_string())
        }
        Command::Crd => spalding_k8s::crd::crds_yaml()
            .map(|yaml| yaml.trim_end().to_owned())
            .map_err(|e| e.to_string()),
        Command::Partner {
            command:
                PartnerCommand::Inspect {
                    endpoint,
                    virtual_cloud,
                    ca_file,
                    parameters,
                    output,
                    allow_plain_http,
                    allow_private_addresses,
                },
        } => {
            let parameters = match parameters {
                Some(file) => read_parameters(&file)?,
                None => ValidatedParameters::carbyne_stack_default(),
            };
            let extra_ca_pem = match ca_file {
                Some(file) => {
                    Some(std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?)
                }
                None => None,
            };
            let options = spalding_k8s::inspect::InspectOptions {
                virtual_cloud,
                parameters,
                transport: spalding_k8s::transport::TransportOptions {
                    allow_plain_http,
                    extra_ca_pem,
                    allow_private_addresses,
                    ..Default::default()
                },
            };
            let inspection = runtime()?
                .block_on(spalding_k8s::inspect::inspect(&endpoint, options))
                .map_err(|e| e.to_string())?;
            match output {
                Output::Text => Ok(inspection.to_text().trim_end().to_owned()),
                Output::Json => {
                    serde_json::to_string_pretty(&inspection).map_err(|e| e.to_string())
                }
            }
        }
        Command::Operator(args) => runtime()?.block_on(operator::run(*args)),
        Command::Status(args) => runtime()?.block_on(status::run(args)),
        Command::Admit(args) => runtime()?.block_on(admit::run(args)),
        Command::ServeDocument(args) => runtime()?.block_on(serve::run(args)),
        Command::Simulate(args) => runtime()?.block_on(simulate::run(args)),
        Command::Apiserver(args) => runtime()?.block_on(apiserver::run(args)),
    }
}

/// A JSON parameters file, validated.
fn read_parameters(file: &std::path::Path) -> Result<ValidatedParameters, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let wire: Parameters =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    wire.validate()
        .map_err(|e| format!("{}: {e}", file.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

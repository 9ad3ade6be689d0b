//! The `spalding` command. Parses arguments and wires the libraries; the work
//! happens in `spalding-core` and `spalding-k8s`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spalding_core::certificate::Certificate;
use spalding_core::parameters::Parameters;

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
    }
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

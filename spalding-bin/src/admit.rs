//! `spalding admit <vc> <partner>`: shows the partner (fingerprint,
//! certificate, parameters, compatibility), asks for confirmation unless
//! `--yes`, and creates the `VirtualCloudPartnerAdmission` pinned to the
//! fingerprint shown; refuses, creating nothing, when `--fingerprint`
//! differs. The work is [`spalding_k8s::admit`].

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Args;
use spalding_k8s::admit::{self, Admitted};

/// Arguments of `spalding admit`.
#[derive(Debug, Args)]
pub struct AdmitArgs {
    /// The VirtualCloud.
    virtual_cloud: String,
    /// The partner's party name, as in the VirtualCloud's spec.partners.
    partner: String,
    /// The fingerprint (sha256:…) the partner's operator gave you out of
    /// band; the admission is refused, and nothing created, if the partner's
    /// certificate has another.
    #[arg(long)]
    fingerprint: Option<String>,
    /// Admit without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// The namespace (default: the context's namespace).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// The kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

/// Whether the answer read from `input` is yes (`y` or `yes`, any case).
fn confirmed(input: impl BufRead) -> bool {
    input
        .lines()
        .next()
        .and_then(Result::ok)
        .is_some_and(|line| {
            let answer = line.trim().to_ascii_lowercase();
            answer == "y" || answer == "yes"
        })
}

/// Shows the partner, asks, admits.
pub async fn run(args: AdmitArgs) -> Result<String, String> {
    let client = spalding_k8s::status::client(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let view = admit::show(&client, &namespace, &args.virtual_cloud, &args.partner)
        .await
        .map_err(|e| e.to_string())?;
    print!("{}", view.to_text());
    let fingerprint =
        admit::check(&view, args.fingerprint.as_deref()).map_err(|e| e.to_string())?;
    if !view.compatible {
        eprintln!(
            "warning: {}'s parameters differ from ours; the virtual cloud stays in admission until they match",
            view.party
        );
    }
    if args.fingerprint.is_none() {
        eprintln!(
            "note: compare this fingerprint with the one {}'s operator gives you, or pass it with --fingerprint",
            view.party
        );
    }
    if !args.yes && view.existing_admission.is_none() {
        eprint!(
            "Admit {} to virtual cloud {namespace}/{} with certificate {fingerprint}? [y/N] ",
            view.party, view.virtual_cloud
        );
        let stdin = std::io::stdin();
        let answer = confirmed(stdin.lock());
        if !stdin.is_terminal() {
            eprintln!(); // the answer came without an echoed newline
        }
        if !answer {
            return Err(
                "not admitted: the answer was not yes (use --yes to admit without asking)"
                    .to_owned(),
            );
        }
    }
    match admit::admit(&client, &view, &fingerprint)
        .await
        .map_err(|e| e.to_string())?
    {
        Admitted::Created { name, fingerprint } => Ok(format!(
            "admitted {}: VirtualCloudPartnerAdmission {namespace}/{name} pinned to {fingerprint}",
            view.party
        )),
        Admitted::AlreadyAdmitted { name } => Ok(format!(
            "{} is already admitted with this certificate (VirtualCloudPartnerAdmission {namespace}/{name})",
            view.party
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::confirmed;

    #[test]
    fn only_yes_confirms() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \n"] {
            assert!(confirmed(yes.as_bytes()), "{yes:?}");
        }
        for no in ["", "\n", "n\n", "no\n", "yess\n", "sure\n"] {
            assert!(!confirmed(no.as_bytes()), "{no:?}");
        }
    }
}

//! `spalding operator`: flags and environment variables into an
//! [`OperatorConfig`], logging, signals, and the key-generation launcher;
//! the operator itself is [`spalding_k8s::operator::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use spalding_core::memory::SimulatedLauncher;
use spalding_core::name::PartyName;
use spalding_core::render::RenderSettings;
use spalding_core::spec::Endpoint;
use spalding_k8s::operator::leader::LeaseSettings;
use spalding_k8s::operator::{IdentitySource, LauncherSource, OperatorConfig, PartnerInfoTls};
use spalding_k8s::transport::TransportOptions;

/// Arguments of `spalding operator`; each also reads an environment variable.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// This party's name (a lowercase DNS-1123 label).
    #[arg(long, env = "SPALDING_PARTY")]
    party: String,
    /// This party's public Spalding endpoint, as partners write it
    /// (https://…); partners fetch {endpoint}/v1/virtual-clouds/{vc}.
    #[arg(long, env = "SPALDING_ENDPOINT")]
    endpoint: String,
    /// Reconcile VirtualClouds only in this namespace (all namespaces when unset).
    #[arg(long, env = "SPALDING_NAMESPACE")]
    namespace: Option<String>,
    /// The kubernetes.io/tls Secret holding the VCP identity; created with a
    /// generated identity (for the endpoint's host) when absent.
    #[arg(
        long,
        env = "SPALDING_IDENTITY_SECRET",
        default_value = "spalding-identity"
    )]
    identity_secret: String,
    /// The identity Secret's namespace (default: the operator's own namespace).
    #[arg(long, env = "SPALDING_IDENTITY_SECRET_NAMESPACE")]
    identity_secret_namespace: Option<String>,
    /// Read the VCP certificate from this PEM file instead of the Secret.
    #[arg(long, env = "SPALDING_CERTIFICATE_FILE", requires = "key_file")]
    certificate_file: Option<PathBuf>,
    /// Read the VCP private key from this PEM file instead of the Secret.
    #[arg(long, env = "SPALDING_KEY_FILE", requires = "certificate_file")]
    key_file: Option<PathBuf>,
    /// Address of the partner-info server.
    #[arg(
        long,
        env = "SPALDING_PARTNER_INFO_ADDRESS",
        default_value = "0.0.0.0:8443"
    )]
    partner_info_address: SocketAddr,
    /// Serve partner-info over plain HTTP, for an ingress that terminates TLS
    /// in front of it (documents stay signed). Default: HTTPS with the VCP certificate.
    #[arg(long, env = "SPALDING_PARTNER_INFO_PLAIN_HTTP")]
    partner_info_plain_http: bool,
    /// Address of the probe server (/healthz, /readyz).
    #[arg(long, env = "SPALDING_HEALTH_ADDRESS", default_value = "0.0.0.0:8080")]
    health_address: SocketAddr,
    /// How often every VC's partners are fetched at rest (e.g. 60s, 5m).
    #[arg(long, env = "SPALDING_REFRESH_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    refresh_interval: Duration,
    /// How soon a VC still forming is reconciled and its partners fetched
    /// again; it doubles while nothing happens, up to the refresh interval
    /// (at least 100ms).
    #[arg(long, env = "SPALDING_FORMING_INTERVAL", default_value = "2s", value_parser = parse_forming_interval)]
    forming_interval: Duration,
    /// How long to wait after a watch event before reconciling, so a burst
    /// of events costs one reconcile (at most 10s).
    #[arg(long, env = "SPALDING_DEBOUNCE", default_value = "200ms", value_parser = parse_debounce)]
    debounce: Duration,
    /// Extra trusted CA certificates (PEM) for partner endpoints, added to the Web PKI roots.
    #[arg(long, env = "SPALDING_PARTNER_CA_FILE")]
    partner_ca_file: Option<PathBuf>,
    /// Development only: allow partners with http:// endpoints.
    #[arg(long, env = "SPALDING_ALLOW_PLAIN_HTTP_PARTNERS")]
    allow_plain_http_partners: bool,
    /// Allow partner endpoints on loopback, link-local or private addresses
    /// (refused by default: they could reach internal services).
    #[arg(long, env = "SPALDING_ALLOW_PRIVATE_PARTNER_ADDRESSES")]
    allow_private_partner_addresses: bool,
    /// Development only: simulate MP-SPDZ key generation (no Job runs; it
    /// "succeeds" at once) instead of running it as a Kubernetes Job.
    #[arg(long, env = "SPALDING_SIMULATE_KEY_GENERATION")]
    simulate_key_generation: bool,
    /// This replica's name in Events and its leader election identity (set
    /// from the pod name; default: POD_NAME, else the host name).
    #[arg(long, env = "SPALDING_INSTANCE")]
    instance: Option<String>,
    /// Address of the Prometheus metrics server (/metrics).
    #[arg(long, env = "SPALDING_METRICS_ADDRESS", default_value = "0.0.0.0:9090")]
    metrics_address: SocketAddr,
    /// Elect a leader on a Lease: only the holder reconciles, every replica
    /// serves partner-info, probes and metrics. `false` for a single replica.
    #[arg(long, env = "SPALDING_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set)]
    leader_election: bool,
    /// The leader election Lease.
    #[arg(long, env = "SPALDING_LEASE_NAME", default_value = "spalding-leader")]
    lease_name: String,
    /// The Lease's namespace (default: the operator's own namespace).
    #[arg(long, env = "SPALDING_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// How long the Lease holds without renewal.
    #[arg(long, env = "SPALDING_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How long the leader keeps leading while it cannot renew (shorter
    /// than the lease duration).
    #[arg(long, env = "SPALDING_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    lease_renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    #[arg(long, env = "SPALDING_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    lease_retry_period: Duration,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then
    /// the in-cluster service account).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "SPALDING_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    parse_bounded(raw, Duration::from_secs(1), Duration::MAX)
}

/// A forming interval: short enough to form quickly, not so short that
/// partners are polled in a tight loop.
fn parse_forming_interval(raw: &str) -> Result<Duration, String> {
    parse_bounded(raw, Duration::from_millis(100), Duration::MAX)
}

/// A debounce: zero reconciles on every event; longer than 10s would only
/// delay reactions to admissions and spec changes.
fn parse_debounce(raw: &str) -> Result<Duration, String> {
    parse_bounded(raw, Duration::ZERO, Duration::from_secs(10))
}

/// A human-readable duration (`90s`, `5m`, `250ms`) within `[least, most]`.
fn parse_bounded(raw: &str, least: Duration, most: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if duration < least {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(least)
        ));
    }
    if duration > most {
        return Err(format!(
            "must be at most {}",
            humantime::format_duration(most)
        ));
    }
    Ok(duration)
}

/// This replica's name: `--instance`, else `POD_NAME`, else the host name.
fn replica_name(instance: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    instance
        .map(str::to_owned)
        .or_else(|| env("POD_NAME"))
        .or_else(|| env("HOSTNAME"))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
}

impl OperatorArgs {
    /// The operator configuration these arguments describe; the Lease lives
    /// in `default_namespace` unless `--lease-namespace` says otherwise.
    fn config(&self, default_namespace: &str) -> Result<OperatorConfig, String> {
        let party = PartyName::new(&self.party).map_err(|e| format!("--party: {e}"))?;
        let endpoint = Endpoint::new(&self.endpoint).map_err(|e| format!("--endpoint: {e}"))?;
        let identity = match (&self.certificate_file, &self.key_file) {
            (Some(certificate), Some(key)) => IdentitySource::Files {
                certificate: certificate.clone(),
                key: key.clone(),
            },
            _ => IdentitySource::Secret {
                namespace: self.identity_secret_namespace.clone(),
                name: self.identity_secret.clone(),
            },
        };
        let extra_ca_pem = match &self.partner_ca_file {
            Some(file) => {
                Some(std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?)
            }
            None => None,
        };
        if self.forming_interval > self.refresh_interval {
            return Err(format!(
                "--forming-interval ({}) must not exceed --refresh-interval ({})",
                humantime::format_duration(self.forming_interval),
                humantime::format_duration(self.refresh_interval)
            ));
        }
        Ok(OperatorConfig {
            party,
            endpoint,
            namespace: self.namespace.clone(),
            identity,
            partner_info_address: self.partner_info_address,
            partner_info_tls: if self.partner_info_plain_http {
                PartnerInfoTls::PlainHttp
            } else {
                PartnerInfoTls::VcpCertificate
            },
            health_address: self.health_address,
            refresh_interval: self.refresh_interval,
            forming_interval: self.forming_interval,
            debounce: self.debounce,
            transport: TransportOptions {
                allow_plain_http: self.allow_plain_http_partners,
                extra_ca_pem,
                allow_private_addresses: self.allow_private_partner_addresses,
                ..TransportOptions::default()
            },
            instance: self.instance.clone(),
            metrics_address: Some(self.metrics_address),
            leader_election: self.lease(default_namespace)?,
        })
    }

    /// The leader election settings, `None` when it is off.
    fn lease(&self, default_namespace: &str) -> Result<Option<LeaseSettings>, String> {
        if !self.leader_election {
            return Ok(None);
        }
        let identity = replica_name(self.instance.as_deref(), |k| std::env::var(k).ok())
            .ok_or("--instance: no replica name (set SPALDING_INSTANCE or POD_NAME)")?;
        let settings = LeaseSettings {
            lease_duration: self.lease_duration,
            renew_deadline: self.lease_renew_deadline,
            retry_period: self.lease_retry_period,
            ..LeaseSettings::new(
                self.lease_namespace
                    .clone()
                    .unwrap_or_else(|| default_namespace.to_owned()),
                self.lease_name.clone(),
                identity,
            )
        };
        settings.validate().map_err(|e| e.to_string())?;
        Ok(Some(settings))
    }

    /// The key-generation launcher: a Kubernetes Job, or a simulation only
    /// when asked for explicitly.
    fn launcher(&self) -> LauncherSource {
        if self.simulate_key_generation {
            tracing::warn!(
                "development option: MP-SPDZ key generation is SIMULATED; no key material is generated"
            );
            return LauncherSource::Given(Arc::new(SimulatedLauncher::new()));
        }
        LauncherSource::Kube {
            render: RenderSettings::default(),
            settings: Box::default(),
        }
    }
}

fn init_logging(format: LogFormat) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| format!("cannot set up logging: {e}"))
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: OperatorArgs) -> Result<String, String> {
    init_logging(args.log_format)?;
    let client = spalding_k8s::status::client(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let config = args.config(client.default_namespace())?;
    let launcher = args.launcher();
    spalding_k8s::operator::run(config, client, launcher, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    Ok("operator stopped".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: OperatorArgs,
    }

    fn parse(extra: &[&str]) -> OperatorArgs {
        let mut argv = vec![
            "operator",
            "--party",
            "Party-A",
            "--endpoint",
            "https://spalding.a.example:8443/",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_serve_tls_with_the_identity_secret_over_all_namespaces() {
        let config = parse(&[]).config("spalding-system").unwrap();
        assert_eq!(config.party.as_str(), "party-a");
        assert_eq!(config.endpoint.as_str(), "https://spalding.a.example:8443");
        assert_eq!(config.namespace, None);
        assert_eq!(
            config.identity,
            IdentitySource::Secret {
                namespace: None,
                name: "spalding-identity".into()
            }
        );
        assert_eq!(config.partner_info_tls, PartnerInfoTls::VcpCertificate);
        assert_eq!(config.partner_info_address.port(), 8443);
        assert_eq!(config.health_address.port(), 8080);
        assert_eq!(config.refresh_interval, Duration::from_secs(60));
        assert_eq!(config.forming_interval, Duration::from_secs(2));
        assert_eq!(config.debounce, Duration::from_millis(200));
        assert!(!config.transport.allow_plain_http);
    }

    #[test]
    fn flags_select_files_plain_http_and_a_namespace() {
        let config = parse(&[
            "--certificate-file",
            "/tls/tls.crt",
            "--key-file",
            "/tls/tls.key",
            "--partner-info-plain-http",
            "--namespace",
            "vcs",
            "--refresh-interval",
            "5m",
            "--allow-plain-http-partners",
        ])
        .config("spalding-system")
        .unwrap();
        assert_eq!(
            config.identity,
            IdentitySource::Files {
                certificate: "/tls/tls.crt".into(),
                key: "/tls/tls.key".into()
            }
        );
        assert_eq!(config.partner_info_tls, PartnerInfoTls::PlainHttp);
        assert_eq!(config.namespace.as_deref(), Some("vcs"));
        assert_eq!(config.refresh_interval, Duration::from_secs(300));
        assert!(config.transport.allow_plain_http);
    }

    /// The arguments every `operator` invocation needs.
    const MINIMAL: [&str; 5] = [
        "operator",
        "--party",
        "a",
        "--endpoint",
        "https://a.example",
    ];

    #[test]
    fn bad_input_is_refused_with_the_flag_named() {
        let args = |party: &str, endpoint: &str| {
            let argv = ["operator", "--party", party, "--endpoint", endpoint];
            Cli::try_parse_from(argv).unwrap().args
        };
        let plain = args("a", "http://a.example").config("ns");
        assert!(plain.unwrap_err().starts_with("--endpoint"));
        let bad_name = args("a_b", "https://a.example").config("ns");
        assert!(bad_name.unwrap_err().starts_with("--party"));
        let half = Cli::try_parse_from(MINIMAL.iter().chain(&["--key-file", "k.pem"]));
        assert!(half.is_err(), "a key file needs a certificate file");
        let fast = Cli::try_parse_from(MINIMAL.iter().chain(&["--refresh-interval", "10ms"]));
        assert!(fast.is_err(), "a refresh interval below 1s is refused");
    }

    #[test]
    fn pacing_flags_are_read_and_bounded() {
        let config = parse(&["--forming-interval", "500ms", "--debounce", "0s"])
            .config("ns")
            .unwrap();
        assert_eq!(config.forming_interval, Duration::from_millis(500));
        assert_eq!(config.debounce, Duration::ZERO);
        let refused = |extra: &[&str]| {
            let error = Cli::try_parse_from(MINIMAL.iter().chain(extra)).unwrap_err();
            error.to_string()
        };
        assert!(refused(&["--forming-interval", "10ms"]).contains("at least 100ms"));
        assert!(refused(&["--debounce", "1m"]).contains("at most 10s"));
        let slower = parse(&["--forming-interval", "2m", "--refresh-interval", "1m"]).config("ns");
        let error = slower.unwrap_err();
        assert!(
            error.contains("--forming-interval (2m) must not exceed --refresh-interval (1m)"),
            "{error}"
        );
    }

    #[test]
    fn leader_election_is_on_by_default_in_the_operators_namespace() {
        let config = parse(&["--instance", "spalding-7d9-x"])
            .config("spalding-system")
            .unwrap();
        let lease = config.leader_election.unwrap();
        assert_eq!(lease.namespace, "spalding-system");
        assert_eq!(lease.name, "spalding-leader");
        assert_eq!(lease.identity, "spalding-7d9-x");
        assert_eq!(lease.lease_duration, Duration::from_secs(15));
        assert_eq!(lease.renew_deadline, Duration::from_secs(10));
        assert_eq!(lease.retry_period, Duration::from_secs(2));
        assert_eq!(config.metrics_address.unwrap().port(), 9090);
    }

    #[test]
    fn leader_election_flags_are_read_and_checked() {
        let off = parse(&["--leader-election", "false"]).config("ns").unwrap();
        assert_eq!(off.leader_election, None);
        let lease = parse(&[
            "--instance",
            "r1",
            "--lease-name",
            "other",
            "--lease-namespace",
            "ops",
            "--lease-duration",
            "30s",
            "--lease-renew-deadline",
            "20s",
            "--lease-retry-period",
            "5s",
        ])
        .config("ns")
        .unwrap()
        .leader_election
        .unwrap();
        assert_eq!(
            (lease.namespace.as_str(), lease.name.as_str()),
            ("ops", "other")
        );
        assert_eq!(lease.lease_duration, Duration::from_secs(30));
        let bad = parse(&["--instance", "r1", "--lease-renew-deadline", "20s"]).config("ns");
        assert!(
            bad.unwrap_err().contains("renew deadline"),
            "deadline beyond the duration"
        );
    }

    #[test]
    fn the_replica_name_falls_back_to_the_pod_then_the_host_name() {
        let env = |pod: Option<&str>| {
            let pod = pod.map(str::to_owned);
            move |key: &str| match key {
                "POD_NAME" => pod.clone(),
                "HOSTNAME" => Some("host-1".to_owned()),
                _ => None,
            }
        };
        assert_eq!(
            replica_name(Some("flag"), env(Some("pod"))).as_deref(),
            Some("flag")
        );
        assert_eq!(replica_name(None, env(Some("pod"))).as_deref(), Some("pod"));
        assert_eq!(replica_name(None, env(None)).as_deref(), Some("host-1"));
    }

    #[test]
    fn key_generation_is_simulated_only_on_request() {
        assert!(!parse(&[]).simulate_key_generation);
        assert!(parse(&["--simulate-key-generation"]).simulate_key_generation);
    }

    /// Every SPALDING_* variable the Deployment sets is one the command reads.
    #[test]
    fn the_deployment_sets_only_known_variables() {
        let command = Cli::command();
        let known: Vec<_> = command
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        let deployment = include_str!("../../deploy/deployment.yaml");
        let set: Vec<_> = deployment
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- name: "))
            .filter(|name| name.starts_with("SPALDING_"))
            .collect();
        assert!(set.contains(&"SPALDING_PARTY"), "{set:?}");
        for name in set {
            assert!(known.iter().any(|k| k == name), "{name} is not read");
        }
        assert!(deployment.contains("args: [\"operator\"]"));
    }

    /// The Lease the Deployment elects on is the one RBAC lets it update,
    /// and the metrics port it declares is the one the operator listens on.
    #[test]
    fn the_deployment_elects_on_the_lease_rbac_grants() {
        let deployment = include_str!("../../deploy/deployment.yaml");
        let rbac = include_str!("../../deploy/rbac.yaml");
        let value_of = |name: &str| {
            let at = deployment.find(&format!("- name: {name}\n")).unwrap();
            let rest = &deployment[at..];
            let line = rest.lines().nth(1).unwrap().trim();
            line.strip_prefix("value: ")
                .unwrap()
                .trim_matches('"')
                .to_owned()
        };
        let lease = value_of("SPALDING_LEASE_NAME");
        assert_eq!(lease, "spalding-leader", "the default");
        assert!(rbac.contains(&format!("resourceNames: [\"{lease}\"]")));
        assert!(rbac.contains("resources: [\"leases\"]"));
        assert_eq!(value_of("SPALDING_LEADER_ELECTION"), "true");
        assert_eq!(value_of("SPALDING_METRICS_ADDRESS"), "0.0.0.0:9090");
        assert!(deployment.contains("containerPort: 9090"));
    }
}

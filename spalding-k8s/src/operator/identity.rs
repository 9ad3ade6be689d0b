//! Where the operator's VCP identity comes from: PEM files (mounted from a
//! Secret the operator manages itself, or cert-manager's), or a
//! `kubernetes.io/tls` Secret that Spalding reads, and creates with a
//! generated identity when it is absent. Creation is create-only: an existing
//! Secret is never replaced, and when another replica creates it first, that
//! one is loaded. Errors name the Secret and the key, never key material.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

use super::OperatorError;
use crate::cluster::{COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use crate::identity::VcpIdentity;

/// The key of the certificate in a `kubernetes.io/tls` Secret.
pub const TLS_CRT: &str = "tls.crt";
/// The key of the private key in a `kubernetes.io/tls` Secret.
pub const TLS_KEY: &str = "tls.key";
/// [`COMPONENT_LABEL`] of the identity Secret Spalding creates.
pub const COMPONENT_IDENTITY: &str = "vcp-identity";

/// Where the VCP identity (certificate and key) is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// PEM files, e.g. a mounted Secret.
    Files {
        /// The certificate (`tls.crt`).
        certificate: PathBuf,
        /// The private key (`tls.key`).
        key: PathBuf,
    },
    /// A `kubernetes.io/tls` Secret, created with a generated identity when absent.
    Secret {
        /// Its namespace; the client's default namespace (in a cluster: the
        /// operator's own) when `None`.
        namespace: Option<String>,
        /// Its name.
        name: String,
    },
}

/// How the identity was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityOrigin {
    /// Read from PEM files.
    Files,
    /// Read from an existing Secret.
    ExistingSecret,
    /// Generated now and stored in a new Secret.
    CreatedSecret,
}

/// The identity from `source`. `common_name` and `hosts` (the public
/// endpoint's host) are used only when a new identity is generated.
pub async fn load(
    source: &IdentitySource,
    client: &Client,
    common_name: &str,
    hosts: &[String],
) -> Result<(VcpIdentity, IdentityOrigin), OperatorError> {
    match source {
        IdentitySource::Files { certificate, key } => VcpIdentity::from_pem_files(certificate, key)
            .map(|identity| (identity, IdentityOrigin::Files))
            .map_err(|source| OperatorError::Identity {
                origin: format!("{} and {}", certificate.display(), key.display()),
                source,
            }),
        IdentitySource::Secret { namespace, name } => {
            let namespace = namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            load_or_create_secret(client, &namespace, name, common_name, hosts).await
        }
    }
}

/// Reads the Secret `namespace/name`; when absent, generates an identity and
/// creates the Secret (create-only).
pub async fn load_or_create_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    common_name: &str,
    hosts: &[String],
) -> Result<(VcpIdentity, IdentityOrigin), OperatorError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret_name = format!("{namespace}/{name}");
    if let Some(secret) = read(&api, &secret_name, name).await? {
        return from_secret(&secret_name, &secret).map(|i| (i, IdentityOrigin::ExistingSecret));
    }
    let identity =
        VcpIdentity::generate(common_name, hosts).map_err(|source| OperatorError::Identity {
            origin: format!("a new identity for Secret {secret_name}"),
            source,
        })?;
    match api
        .create(&PostParams::default(), &secret(namespace, name, &identity))
        .await
    {
        Ok(_) => Ok((identity, IdentityOrigin::CreatedSecret)),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Another replica created it first: use that one, drop ours unseen.
            drop(identity);
            let secret =
                read(&api, &secret_name, name)
                    .await?
                    .ok_or_else(|| OperatorError::SecretApi {
                        operation: format!("read Secret {secret_name}"),
                        message: "it was created and deleted again meanwhile".to_owned(),
                    })?;
            from_secret(&secret_name, &secret).map(|i| (i, IdentityOrigin::ExistingSecret))
        }
        // The request carried the private key: report only the status code
        // and reason, never the server's message, which could echo it.
        Err(kube::Error::Api(status)) => Err(OperatorError::SecretApi {
            operation: format!("create Secret {secret_name}"),
            message: format!("API server answered {} {}", status.code, status.reason),
        }),
        Err(_) => Err(OperatorError::SecretApi {
            operation: format!("create Secret {secret_name}"),
            message: "the request did not complete".to_owned(),
        }),
    }
}

/// Attempts of the start-up read of the identity Secret: an API server
/// answering 5xx or 429 for a moment must not stop the operator.
const READ_ATTEMPTS: u32 = 6;
/// The pause before the first retry; doubled after each.
const READ_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

async fn read(
    api: &Api<Secret>,
    secret_name: &str,
    name: &str,
) -> Result<Option<Secret>, OperatorError> {
    let mut attempt = 1;
    loop {
        match api.get_opt(name).await {
            Ok(found) => return Ok(found),
            Err(kube::Error::Api(status))
                if attempt < READ_ATTEMPTS && (status.code == 429 || status.code >= 500) =>
            {
                tracing::warn!(secret = %secret_name, code = status.code, attempt, "reading the identity Secret failed; retrying");
                tokio::time::sleep(READ_BACKOFF * 2_u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(OperatorError::SecretApi {
                    operation: format!("read Secret {secret_name}"),
                    // A GET sends no secret; its error is safe to report.
                    message: e.to_string(),
                });
            }
        }
    }
}

/// The identity held by a `kubernetes.io/tls` Secret.
fn from_secret(secret_name: &str, secret: &Secret) -> Result<VcpIdentity, OperatorError> {
    let field = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| std::str::from_utf8(&v.0).ok())
            .ok_or_else(|| OperatorError::SecretMissingKey {
                secret: secret_name.to_owned(),
                key,
            })
    };
    VcpIdentity::from_pem(field(TLS_CRT)?, field(TLS_KEY)?).map_err(|source| {
        OperatorError::Identity {
            origin: format!("Secret {secret_name}"),
            source,
        }
    })
}

/// The Secret holding a generated identity: `kubernetes.io/tls`, labelled as
/// Spalding's, and owned by nothing (it must outlive any VC).
pub fn secret(namespace: &str, name: &str, identity: &VcpIdentity) -> Secret {
    let pems = identity.pems();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (COMPONENT_LABEL.to_owned(), COMPONENT_IDENTITY.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (TLS_CRT.to_owned(), ByteString(pems.tls_crt.into_bytes())),
            (TLS_KEY.to_owned(), ByteString(pems.tls_key.into_bytes())),
        ])),
        ..Secret::default()
    }
}

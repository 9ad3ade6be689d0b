//! The hardened HTTPS [`PartnerTransport`]: fetches a partner's document from
//! [`Endpoint::document_url`] with reqwest over rustls (ring, the build's one
//! crypto provider) and refuses anything unexpected before it reaches the
//! core.
//!
//! A fetch goes: URL check (HTTPS only, plain HTTP only with
//! [`TransportOptions::allow_plain_http`]) → request (connect timeout, and a
//! total timeout over the whole attempt that also cuts a server dripping its
//! body) → status (a 3xx is a refusal, redirects are never followed; a 5xx is
//! retried with capped, jittered backoff, as are connection errors) →
//! `Content-Type: application/json` → body read chunk by chunk under a cap →
//! JSON syntax → document structure (the core parses the certificate and
//! parameters) → signature ([`crate::signing::verify_signature`]). Every
//! refusal is a [`FetchError`]; at the port it becomes the core's
//! [`TransportError`] with the same one-line reason. The content checks and
//! the rollback check are the core's.
//!
//! A body byte for byte equal to the last one verified from the same URL
//! skips JSON, structure and signature ([`verified`]): the same bytes give
//! the same verdict. The client keeps its connections alive, so a fetch of
//! an unchanged document costs one request over an open TLS connection
//! and one comparison.
//!
//! Trust never rests on the TLS certificate: the roots (Mozilla's, plus an
//! optional extra CA bundle) only protect the fetch; the document's signature
//! and the admitted fingerprint protect the content.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use spalding_core::document::PartnerDocument;
use spalding_core::ports::{PartnerTransport, TransportError};
use spalding_core::spec::Endpoint;

use crate::address::{PolicyResolver, is_public};
use crate::retry::{Jitter, RetryPolicy};
use crate::signing::{SignatureError, verify_signature};

pub mod verified;

use self::verified::Verified;

/// The default body cap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// How the transport behaves; [`Default`] is the production setting.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Limit to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Limit of one whole attempt, body included.
    pub total_timeout: Duration,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Retries of connection errors and 5xx answers.
    pub retry: RetryPolicy,
    /// Development only: allow `http://` URLs.
    pub allow_plain_http: bool,
    /// Extra trusted roots, PEM, added to Mozilla's.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Allow endpoints on loopback, link-local and private addresses
    /// (see [`crate::address`]); off by default.
    pub allow_private_addresses: bool,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            retry: RetryPolicy::default(),
            allow_plain_http: false,
            extra_ca_pem: None,
            allow_private_addresses: false,
        }
    }
}

/// Why the transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    /// The extra CA bundle holds no certificate.
    #[error("CA bundle holds no certificate")]
    EmptyCaBundle,
    /// The extra CA bundle is not PEM.
    #[error("CA bundle is not valid PEM: {0}")]
    CaBundlePem(String),
    /// A certificate of the bundle cannot be a trust anchor.
    #[error("CA bundle certificate {index} is not usable as a root: {reason}")]
    CaCertificate {
        /// 0-based position in the bundle.
        index: usize,
        /// rustls's reason.
        reason: String,
    },
    /// rustls or reqwest refused the configuration.
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
}

/// Why a fetch was refused; each variant is one line for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not a URL, or the VC name cannot be part of one.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL (shortened).
        url: String,
        /// Why.
        reason: String,
    },
    /// The URL names a non-public IP address.
    #[error(
        "refusing {url}: {address} is not a public address; private partner addresses are not allowed"
    )]
    ForbiddenAddress {
        /// The URL.
        url: String,
        /// The address.
        address: std::net::IpAddr,
    },
    /// Plain HTTP without the development option.
    #[error("refusing plain HTTP to {url}: partner endpoints must use HTTPS")]
    PlainHttp {
        /// The URL.
        url: String,
    },
    /// TCP, DNS or TLS failed.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// The innermost reason.
        reason: String,
    },
    /// The attempt ran out of time (slow connect, slow or dripping server).
    #[error("{url} did not answer completely within {limit:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit that was hit.
        limit: Duration,
    },
    /// The server answered with a redirect, which is never followed.
    #[error("{url} answered {status} redirecting to {location:?}; redirects are not followed")]
    Redirect {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The `Location` header (shortened), if any.
        location: String,
    },
    /// Any other non-200 status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Not `application/json`.
    #[error("{url} answered with content type {found:?}, expected application/json")]
    ContentType {
        /// The URL.
        url: String,
        /// What the server said (shortened).
        found: String,
    },
    /// The body exceeds the cap.
    #[error("{url} sent a body larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// The body broke off.
    #[error("reading the body from {url} failed: {reason}")]
    Body {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The body is not JSON.
    #[error("{url} sent invalid JSON: {reason}")]
    InvalidJson {
        /// The URL.
        url: String,
        /// serde_json's reason (position, no content).
        reason: String,
    },
    /// The JSON is not a valid document (fields, certificate, parameters).
    #[error("{url} sent an invalid document: {reason}")]
    InvalidDocument {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The signature is missing or does not verify.
    #[error("{url}: {source}")]
    Signature {
        /// The URL.
        url: String,
        /// Why.
        source: SignatureError,
    },
}

impl FetchError {
    /// Whether another attempt may succeed (connection failures and 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Status { status, .. } => (500..600).contains(status),
            _ => false,
        }
    }
}

impl From<FetchError> for TransportError {
    fn from(error: FetchError) -> Self {
        TransportError(error.to_string())
    }
}

/// The HTTPS partner transport.
#[derive(Debug, Clone)]
pub struct HttpsTransport {
    client: reqwest::Client,
    options: Arc<TransportOptions>,
    jitter: Arc<Jitter>,
    verified: Arc<Verified<PartnerDocument>>,
}

impl HttpsTransport {
    /// A transport with `options`.
    pub fn new(options: TransportOptions) -> Result<Self, TransportBuildError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &options.extra_ca_pem {
            for (index, der) in parse_ca_bundle(pem)?.into_iter().enumerate() {
                roots
                    .add(der)
                    .map_err(|e| TransportBuildError::CaCertificate {
                        index,
                        reason: e.to_string(),
                    })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportBuildError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .timeout(options.total_timeout)
            .https_only(!options.allow_plain_http)
            .dns_resolver(Arc::new(PolicyResolver {
                allow_private: options.allow_private_addresses,
            }))
            .user_agent(concat!("spalding/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportBuildError::Client(innermost(&e)))?;
        Ok(Self {
            client,
            options: Arc::new(options),
            jitter: Arc::new(Jitter::from_os()),
            verified: Arc::default(),
        })
    }

    /// Fetches and checks the document at `url` (transport checks and
    /// signature; not the content), retrying per the policy.
    pub async fn fetch_url(&self, url: &str) -> Result<PartnerDocument, FetchError> {
        let url = self.check_url(url)?;
        let attempts = self.options.retry.attempts.max(1);
        let mut retry = 0;
        loop {
            match self.attempt(&url).await {
                Err(error) if error.is_retryable() && retry + 1 < attempts => {
                    tracing::debug!(%error, retry, "partner fetch failed, retrying");
                    tokio::time::sleep(self.options.retry.backoff(retry, &self.jitter)).await;
                    retry += 1;
                }
                result => return result,
            }
        }
    }

    /// Fetches the document of `vc` from `endpoint`.
    pub async fn fetch_document(
        &self,
        vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, FetchError> {
        check_vc_name(vc, endpoint.as_str())?;
        self.fetch_url(&endpoint.document_url(vc)).await
    }

    fn check_url(&self, raw: &str) -> Result<reqwest::Url, FetchError> {
        let url = reqwest::Url::parse(raw).map_err(|e| FetchError::InvalidUrl {
            url: shorten(raw),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.options.allow_plain_http => {}
            "http" => return Err(FetchError::PlainHttp { url: shorten(raw) }),
            other => {
                return Err(FetchError::InvalidUrl {
                    url: shorten(raw),
                    reason: format!("scheme {other:?} is not https"),
                });
            }
        }
        let literal = url.host_str().and_then(|host| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok()
        });
        if let Some(address) =
            literal.filter(|ip| !self.options.allow_private_addresses && !is_public(*ip))
        {
            return Err(FetchError::ForbiddenAddress {
                url: shorten(raw),
                address,
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the credentials (errors reach logs, Events and status).
            let mut shown = url.clone();
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            return Err(FetchError::InvalidUrl {
                url: shorten(shown.as_str()),
                reason: "credentials in URLs are not allowed".to_owned(),
            });
        }
        Ok(url)
    }

    /// One attempt, all of it under the total timeout.
    async fn attempt(&self, url: &reqwest::Url) -> Result<PartnerDocument, FetchError> {
        let limit = self.options.total_timeout;
        match tokio::time::timeout(limit, self.attempt_untimed(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                limit,
            }),
        }
    }

    async fn attempt_untimed(&self, url: &reqwest::Url) -> Result<PartnerDocument, FetchError> {
        let shown = || url.to_string();
        let mut response = self
            .client
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.request_error(url, &e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .map(|v| shorten(&String::from_utf8_lossy(v.as_bytes())))
                .unwrap_or_default();
            return Err(FetchError::Redirect {
                url: shown(),
                status: status.as_u16(),
                location,
            });
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: shown(),
                status: status.as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if !is_json(&content_type) {
            return Err(FetchError::ContentType {
                url: shown(),
                found: shorten(&content_type),
            });
        }
        let limit = self.options.max_body_bytes;
        let too_large = || FetchError::TooLarge {
            url: shown(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.request_error(url, &e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let key = url.as_str();
        if let Some(document) = self.verified.recall(key, &body) {
            return Ok(document);
        }
        let document = parse_document(&body).map_err(|e| e.at(shown()))?;
        verify_signature(&document).map_err(|source| FetchError::Signature {
            url: shown(),
            source,
        })?;
        self.verified.remember(key, body, &document);
        Ok(document)
    }

    fn request_error(&self, url: &reqwest::Url, error: &reqwest::Error) -> FetchError {
        if error.is_timeout() {
            FetchError::Timeout {
                url: url.to_string(),
                limit: if error.is_connect() {
                    self.options.connect_timeout
                } else {
                    self.options.total_timeout
                },
            }
        } else if error.is_connect() {
            FetchError::Connect {
                url: url.to_string(),
                reason: innermost(error),
            }
        } else if error.is_body() || error.is_decode() {
            FetchError::Body {
                url: url.to_string(),
                reason: innermost(error),
            }
        } else {
            // Protocol errors (e.g. a broken HTTP/2 stream) count as connection failures.
            FetchError::Connect {
                url: url.to_string(),
                reason: innermost(error),
            }
        }
    }
}

#[async_trait]
impl PartnerTransport for HttpsTransport {
    async fn fetch(
        &self,
        vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, TransportError> {
        Ok(self.fetch_document(vc, endpoint).await?)
    }
}

/// Why bytes are not a document, before the URL is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not a valid document.
    #[error("invalid document: {0}")]
    Document(String),
}

impl ParseError {
    fn at(self, url: String) -> FetchError {
        match self {
            Self::Json(reason) => FetchError::InvalidJson { url, reason },
            Self::Document(reason) => FetchError::InvalidDocument { url, reason },
        }
    }
}

/// Parses a document: JSON syntax first, then the structure (which parses
/// the certificate and validates the parameters). Never panics.
pub fn parse_document(bytes: &[u8]) -> Result<PartnerDocument, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| ParseError::Document(shorten(&e.to_string())))
}

/// Reads a PEM bundle of one or more certificates.
pub fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TransportBuildError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TransportBuildError::CaBundlePem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TransportBuildError::EmptyCaBundle);
    }
    Ok(certs)
}

/// VC names are DNS labels (or dotted); anything else must not reach a URL path.
fn check_vc_name(vc: &str, endpoint: &str) -> Result<(), FetchError> {
    let ok = !vc.is_empty()
        && vc.len() <= 253
        && vc
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(FetchError::InvalidUrl {
            url: shorten(endpoint),
            reason: format!("virtual cloud name {:?} is not a DNS name", shorten(vc)),
        })
    }
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The innermost cause of an error chain, which names what really failed.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    shorten(&current.to_string())
}

/// At most 200 characters of untrusted or long text.
fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests;

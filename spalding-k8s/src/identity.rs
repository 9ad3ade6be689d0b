//! The party's VCP identity: its certificate and private key. Loaded from PEM
//! files (`tls.crt`, `tls.key`, parsed with `rustls-pki-types`' `PemObject`)
//! or generated with rcgen (ECDSA P-256, subject alternative names = the
//! configured public host names). Keeping a generated identity in a
//! Kubernetes Secret is the Kubernetes adapter's job; [`VcpIdentity::pems`]
//! hands it the two PEMs to store.
//!
//! Only the fingerprint is ever printed: the key holder's `Debug` is
//! redacted, errors never quote key material, and a loaded key must match
//! the certificate (checked by signing a probe and verifying it against the
//! certificate).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::sign::SigningKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use spalding_core::certificate::{Certificate, CertificateError, Fingerprint};

use crate::signing;

/// Largest key file read, far above any RSA-8192 PKCS#8 PEM.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// Largest certificate file read (the core refuses larger certificates anyway).
const MAX_CERT_FILE_BYTES: u64 = 256 * 1024;

/// Why an identity could not be loaded or generated. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A file is larger than any certificate or key.
    #[error("{path} is {size} bytes, larger than any certificate or key")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The certificate PEM is not exactly one valid certificate.
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// The key PEM holds no usable private key.
    #[error("private key: no PKCS#8, SEC1 or PKCS#1 private key found ({reason})")]
    NoKey {
        /// What the PEM parser said.
        reason: String,
    },
    /// The key is of a type or curve that cannot sign documents.
    #[error("private key: unsupported key type ({reason})")]
    UnsupportedKey {
        /// What rustls said.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("private key does not match certificate {fingerprint}")]
    KeyMismatch {
        /// The certificate's fingerprint (boxed: the error stays small).
        fingerprint: Box<Fingerprint>,
    },
    /// rcgen refused the host names or failed to generate.
    #[error("cannot generate a certificate: {reason}")]
    Generate {
        /// rcgen's reason.
        reason: String,
    },
}

/// The two PEMs of an identity, as stored in a `kubernetes.io/tls` Secret.
pub struct IdentityPems {
    /// `tls.crt`: the certificate.
    pub tls_crt: String,
    /// `tls.key`: the PKCS#8 private key. Secret: never log it.
    pub tls_key: String,
}

impl fmt::Debug for IdentityPems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityPems")
            .field("tls_crt", &self.tls_crt)
            .field("tls_key", &"<redacted>")
            .finish()
    }
}

/// The party's VCP certificate and private key.
#[derive(Clone)]
pub struct VcpIdentity {
    certificate: Certificate,
    key: Arc<PrivateKeyDer<'static>>,
    signing_key: Arc<dyn SigningKey>,
}

impl fmt::Debug for VcpIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VcpIdentity")
            .field("fingerprint", &self.certificate.fingerprint().as_str())
            .field("subject", &self.certificate.summary().subject)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl VcpIdentity {
    /// Reads `tls.crt` and `tls.key` style PEM files.
    pub fn from_pem_files(certificate: &Path, key: &Path) -> Result<Self, IdentityError> {
        let cert_pem = read_limited(certificate, MAX_CERT_FILE_BYTES)?;
        let key_pem = read_limited(key, MAX_KEY_FILE_BYTES)?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Parses exactly one certificate and one private key, and checks that
    /// they belong together.
    pub fn from_pem(certificate: &str, key: &str) -> Result<Self, IdentityError> {
        let certificate = Certificate::from_pem(certificate)?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
            IdentityError::NoKey {
                // The PEM error names the section problem, never the bytes.
                reason: e.to_string(),
            }
        })?;
        Self::from_parts(certificate, key)
    }

    /// An identity from a parsed certificate and a DER key.
    pub fn from_parts(
        certificate: Certificate,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
            IdentityError::UnsupportedKey {
                reason: e.to_string(),
            }
        })?;
        let identity = Self {
            certificate,
            key: Arc::new(key),
            signing_key,
        };
        identity.check_key_matches()?;
        Ok(identity)
    }

    /// Generates a self-signed ECDSA P-256 certificate whose subject
    /// alternative names are `hosts` (DNS names or IP addresses) and whose
    /// common name is `common_name`.
    pub fn generate(common_name: &str, hosts: &[String]) -> Result<Self, IdentityError> {
        let failed = |e: rcgen::Error| IdentityError::Generate {
            reason: e.to_string(),
        };
        let key_pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(failed)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let cert = params.self_signed(&key_pair).map_err(failed)?;
        let certificate = Certificate::from_der(cert.der())?;
        let key = PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        Self::from_parts(certificate, key)
    }

    /// The certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The certificate's fingerprint: the only thing about an identity to print.
    pub fn fingerprint(&self) -> &Fingerprint {
        self.certificate.fingerprint()
    }

    /// The rustls signing key (for the signer and the server's TLS config).
    pub(crate) fn signing_key(&self) -> &Arc<dyn SigningKey> {
        &self.signing_key
    }

    /// The private key in DER, for building a TLS server configuration.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The certificate and key as PEM, to store in a Secret.
    pub fn pems(&self) -> IdentityPems {
        let (label, der): (&str, &[u8]) = match self.key.as_ref() {
            PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(k) => ("PRIVATE KEY", k.secret_pkcs8_der()),
            _ => ("PRIVATE KEY", &[]),
        };
        IdentityPems {
            tls_crt: self.certificate.pem().to_owned(),
            tls_key: pem_encode(label, der),
        }
    }

    /// Signs a probe with the key and verifies it against the certificate.
    fn check_key_matches(&self) -> Result<(), IdentityError> {
        const PROBE: &[u8] = b"spalding identity key check";
        let mismatch = || IdentityError::KeyMismatch {
            fingerprint: Box::new(self.certificate.fingerprint().clone()),
        };
        let signature =
            signing::sign_bytes(self.signing_key.as_ref(), PROBE).map_err(|_| mismatch())?;
        signing::verify_bytes(&self.certificate, PROBE, &signature).map_err(|_| mismatch())
    }
}

/// Reads at most `limit` bytes of a UTF-8 file.
fn read_limited(path: &Path, limit: u64) -> Result<String, IdentityError> {
    let shown = path.display().to_string();
    let read_error = |e: std::io::Error| IdentityError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > limit {
        return Err(IdentityError::TooLarge { path: shown, size });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    String::from_utf8(bytes).map_err(|_| IdentityError::Read {
        path: shown.clone(),
        reason: "not UTF-8 text".to_owned(),
    })
}

/// PEM with 64-character base64 lines.
fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_round_trips_through_pems() {
        let identity = VcpIdentity::generate("party-a", &["party-a.example".to_owned()]).unwrap();
        let pems = identity.pems();
        let loaded = VcpIdentity::from_pem(&pems.tls_crt, &pems.tls_key).unwrap();
        assert_eq!(loaded.fingerprint(), identity.fingerprint());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let identity = VcpIdentity::generate("party-a", &["a.example".to_owned()]).unwrap();
        let pems = identity.pems();
        let body: String = pems
            .tls_key
            .lines()
            .nth(1)
            .unwrap()
            .chars()
            .take(20)
            .collect();
        assert!(!format!("{identity:?}").contains(&body));
        assert!(!format!("{pems:?}").contains(&body));
        assert!(format!("{identity:?}").contains(identity.fingerprint().as_str()));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = VcpIdentity::generate("a", &["a.example".to_owned()]).unwrap();
        let b = VcpIdentity::generate("b", &["b.example".to_owned()]).unwrap();
        let error = VcpIdentity::from_pem(&a.pems().tls_crt, &b.pems().tls_key).unwrap_err();
        assert!(
            matches!(error, IdentityError::KeyMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_certificate_pem_with_two_certificates_is_refused() {
        let a = VcpIdentity::generate("a", &["a.example".to_owned()]).unwrap();
        let b = VcpIdentity::generate("b", &["b.example".to_owned()]).unwrap();
        let two = format!("{}{}", a.pems().tls_crt, b.pems().tls_crt);
        let error = VcpIdentity::from_pem(&two, &a.pems().tls_key).unwrap_err();
        assert!(
            matches!(
                error,
                IdentityError::Certificate(CertificateError::TooManyCertificates { .. })
            ),
            "{error}"
        );
    }

    #[test]
    fn testdata_keys_of_every_kind_load() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../spalding-core/src/testdata/"
        );
        let cert = std::fs::read_to_string(format!("{dir}party-a.cert.pem")).unwrap();
        for key in ["test-only-party-a.key.pem", "test-only-party-a.ec-key.pem"] {
            let key = std::fs::read_to_string(format!("{dir}{key}")).unwrap();
            let _ = VcpIdentity::from_pem(&cert, &key).unwrap();
        }
    }
}

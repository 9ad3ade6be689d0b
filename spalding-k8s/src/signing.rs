//! Signed partner-info documents: [`VcpSigner`] implements the core's
//! [`DocumentSigner`] port with the party's VCP key, and [`verify_signature`]
//! checks a fetched document's signature against the certificate inside it.
//!
//! The signature covers [`canonical_bytes`]`(body, sequence)` and travels
//! base64-encoded (standard alphabet, padded) in `PartnerDocument.signature`.
//! The scheme is fixed by the key type, so no algorithm field is needed (and
//! none can be downgraded): ECDSA P-256 → ECDSA with SHA-256 (ASN.1 DER
//! signature), P-384 → ECDSA with SHA-384, Ed25519 → Ed25519, RSA → RSA-PSS
//! with SHA-256 (2048 to 8192 bits). Crypto is ring's, through rustls (signing)
//! and rustls-webpki (verification).
//!
//! DESIGN.md asks a client to verify against the certificate inside the
//! document and, once the partner is admitted, against the admitted
//! certificate. That second check is the composition of this one with the
//! core's: [`verify_signature`] proves the document was signed by the key of
//! the certificate it carries, and the core compares that certificate's
//! fingerprint with the admitted one; a different certificate then surfaces as
//! `CertificateChanged` (re-admission needed), a clearer condition for an
//! operator than a refused fetch.

use std::sync::Arc;

use base64::Engine as _;
use rustls::SignatureScheme;
use rustls::sign::SigningKey;
use rustls_pki_types::CertificateDer;
use spalding_core::certificate::Certificate;
use spalding_core::document::{DocumentBody, PartnerDocument, canonical_bytes};
use spalding_core::ports::{DocumentSigner, SignError};
use webpki::ring as algs;

use crate::identity::VcpIdentity;

/// Largest base64 signature accepted (an RSA-8192 signature is 1,368 characters).
pub const MAX_SIGNATURE_CHARS: usize = 2048;

/// The schemes a VCP key may sign with, one per key type.
const SCHEMES: [SignatureScheme; 4] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
];

/// Why a document's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The document carries no signature.
    #[error("document is not signed")]
    Missing,
    /// The signature is not base64 or is implausibly long.
    #[error("document signature is malformed: {0}")]
    Malformed(&'static str),
    /// The certificate's key is of a type no VCP key may have.
    #[error("document certificate has an unsupported key type: {0}")]
    UnsupportedKey(String),
    /// The signature does not verify: the document was altered or signed by another key.
    #[error("document signature does not verify against its certificate {fingerprint}")]
    Invalid {
        /// The fingerprint of the certificate in the document.
        fingerprint: String,
    },
    /// The canonical bytes could not be computed.
    #[error("document cannot be encoded: {0}")]
    Encoding(String),
}

/// Signs documents with the party's VCP key.
#[derive(Clone)]
pub struct VcpSigner {
    key: Arc<dyn SigningKey>,
}

impl std::fmt::Debug for VcpSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VcpSigner")
            .field("algorithm", &self.key.algorithm())
            .finish_non_exhaustive()
    }
}

impl VcpSigner {
    /// A signer with `identity`'s key.
    pub fn new(identity: &VcpIdentity) -> Self {
        Self {
            key: Arc::clone(identity.signing_key()),
        }
    }
}

impl DocumentSigner for VcpSigner {
    fn sign(&self, body: &DocumentBody, sequence: u64) -> Result<PartnerDocument, SignError> {
        let bytes = canonical_bytes(body, sequence).map_err(|e| SignError(e.to_string()))?;
        let signature = sign_bytes(self.key.as_ref(), &bytes)?;
        Ok(PartnerDocument {
            body: body.clone(),
            sequence,
            signature: Some(base64::engine::general_purpose::STANDARD.encode(signature)),
        })
    }
}

/// Signs `message` with the one scheme fixed for the key's type.
pub(crate) fn sign_bytes(key: &dyn SigningKey, message: &[u8]) -> Result<Vec<u8>, SignError> {
    let signer = key.choose_scheme(&SCHEMES).ok_or_else(|| {
        SignError(format!(
            "a {:?} key cannot sign partner documents",
            key.algorithm()
        ))
    })?;
    signer
        .sign(message)
        .map_err(|e| SignError(format!("signing failed: {e}")))
}

/// Verifies `signature` over `message` against `certificate`'s public key.
pub(crate) fn verify_bytes(
    certificate: &Certificate,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let der = CertificateDer::from(certificate.der());
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| SignatureError::UnsupportedKey(format!("{e:?}")))?;
    let invalid = || SignatureError::Invalid {
        fingerprint: certificate.fingerprint().to_string(),
    };
    let mut supported = false;
    for algorithm in [
        algs::ECDSA_P256_SHA256,
        algs::ECDSA_P384_SHA384,
        algs::ED25519,
        algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    ] {
        match cert.verify_signature(algorithm, message, signature) {
            Ok(()) => return Ok(()),
            // Another key type: try the next scheme.
            Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => {}
            Err(_) => supported = true,
        }
    }
    if supported {
        Err(invalid())
    } else {
        Err(SignatureError::UnsupportedKey(
            "not ECDSA P-256/P-384, Ed25519 or RSA 2048-8192".to_owned(),
        ))
    }
}

/// Checks that `document` is signed by the key of the certificate it carries.
pub fn verify_signature(document: &PartnerDocument) -> Result<(), SignatureError> {
    let encoded = document
        .signature
        .as_deref()
        .ok_or(SignatureError::Missing)?;
    if encoded.len() > MAX_SIGNATURE_CHARS {
        return Err(SignatureError::Malformed("longer than any supported key's"));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| SignatureError::Malformed("not base64"))?;
    let bytes = canonical_bytes(&document.body, document.sequence)
        .map_err(|e| SignatureError::Encoding(e.to_string()))?;
    verify_bytes(&document.body.certificate, &bytes, &signature)
}

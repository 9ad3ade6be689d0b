//! X.509 certificates exchanged between parties: strict PEM parsing of
//! exactly one certificate and its `sha256:` fingerprint.
//!
//! [`Certificate::from_pem`] accepts one `CERTIFICATE` PEM section and nothing
//! else of PEM kind: a private key anywhere in the input is refused with a
//! warning that it must not be shared (its bytes are never echoed), as are
//! further certificates, CSRs, CRLs and any other section. The DER must parse
//! as an X.509 certificate with no trailing bytes. The certificate is kept in
//! a canonical PEM form (64-character base64 lines) next to its DER and its
//! [`Fingerprint`], the SHA-256 of the DER, which operators compare and admit.
//! Signatures are not verified here; this module only establishes that the
//! bytes are one well-formed certificate.

mod fingerprint;
#[cfg(test)]
mod tests;

pub use fingerprint::{Fingerprint, FingerprintError};

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The largest accepted PEM input (and DER certificate), in bytes.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

const BEGIN_MARKER: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";

/// The kind of a private key found in the input (named by its PEM label only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKeyKind {
    /// `PRIVATE KEY` (PKCS#8).
    Pkcs8,
    /// `ENCRYPTED PRIVATE KEY` (encrypted PKCS#8).
    EncryptedPkcs8,
    /// `RSA PRIVATE KEY` (PKCS#1).
    Rsa,
    /// `EC PRIVATE KEY` (SEC 1).
    Ec,
    /// Any other label containing `PRIVATE KEY` (DSA, OpenSSH, PGP, …).
    Other,
}

impl fmt::Display for PrivateKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pkcs8 => "a PKCS#8 private key",
            Self::EncryptedPkcs8 => "an encrypted PKCS#8 private key",
            Self::Rsa => "an RSA private key",
            Self::Ec => "an EC private key",
            Self::Other => "a private key",
        })
    }
}

/// A PEM section other than a certificate or a private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherSection {
    /// `CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`.
    CertificateRequest,
    /// `X509 CRL`.
    Crl,
    /// `PUBLIC KEY` or `RSA PUBLIC KEY`.
    PublicKey,
    /// `TRUSTED CERTIFICATE` (OpenSSL's certificate with trust settings).
    TrustedCertificate,
    /// `PKCS7`.
    Pkcs7,
    /// Any other label (not echoed).
    Unrecognised,
}

impl fmt::Display for OtherSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CertificateRequest => "a certificate signing request",
            Self::Crl => "a certificate revocation list",
            Self::PublicKey => "a bare public key",
            Self::TrustedCertificate => "an OpenSSL TRUSTED CERTIFICATE",
            Self::Pkcs7 => "a PKCS#7 bundle",
            Self::Unrecognised => "an unrecognised PEM section",
        })
    }
}

/// What is syntactically wrong with the PEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemIssue {
    /// A `-----BEGIN` marker is not at the start of a line.
    MarkerNotAtLineStart,
    /// A `-----BEGIN` line is not closed by five dashes.
    UnterminatedMarker,
    /// A `-----BEGIN` line is malformed.
    IllegalSectionStart,
    /// The `-----END CERTIFICATE-----` line is missing.
    MissingSectionEnd,
    /// The body is not valid base64.
    InvalidBase64,
    /// Any other PEM decoding failure.
    Other,
}

impl fmt::Display for PemIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MarkerNotAtLineStart => "a -----BEGIN marker is not at the start of a line",
            Self::UnterminatedMarker => "a -----BEGIN line is not closed by five dashes",
            Self::IllegalSectionStart => "a -----BEGIN line is malformed",
            Self::MissingSectionEnd => "the -----END CERTIFICATE----- line is missing",
            Self::InvalidBase64 => "the body between the markers is not valid base64",
            Self::Other => "the PEM could not be decoded",
        })
    }
}

/// Why a certificate was refused. Messages never contain the input's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The input is empty or only whitespace.
    #[error("no certificate was given: the input is empty")]
    Empty,
    /// The input exceeds [`MAX_CERTIFICATE_BYTES`].
    #[error(
        "the input has {size} bytes, more than the limit of {MAX_CERTIFICATE_BYTES} bytes for one certificate"
    )]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
    },
    /// The input contains a private key.
    #[error(
        "the input contains {kind}; a private key must never be shared or uploaded — give only the certificate (-----BEGIN CERTIFICATE-----), and consider the key exposed if it was sent anywhere"
    )]
    PrivateKeyGiven {
        /// Which kind of key, by its PEM label.
        kind: PrivateKeyKind,
    },
    /// There is no `CERTIFICATE` section.
    #[error("no PEM certificate was found (expected a -----BEGIN CERTIFICATE----- section)")]
    NoCertificate,
    /// There is more than one certificate.
    #[error("found {count} certificates, expected exactly one")]
    TooManyCertificates {
        /// Number of `CERTIFICATE` sections.
        count: usize,
    },
    /// The input holds a PEM section other than a certificate.
    #[error("the input contains {section}; only a single certificate is accepted")]
    UnexpectedSection {
        /// Which section.
        section: OtherSection,
    },
    /// The PEM is malformed.
    #[error("the PEM is malformed: {issue}")]
    MalformedPem {
        /// What is wrong.
        issue: PemIssue,
    },
    /// The DER is not an X.509 certificate.
    #[error("the data is not a valid X.509 certificate ({reason})")]
    NotX509 {
        /// The parser's description of the structural problem.
        reason: String,
    },
    /// Bytes follow the certificate's DER encoding.
    #[error("{count} unexpected bytes follow the certificate's DER encoding")]
    TrailingData {
        /// Number of trailing bytes.
        count: usize,
    },
}

/// Subject, issuer and validity of a certificate, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    /// The subject distinguished name, e.g. `CN=party-a`.
    pub subject: String,
    /// The issuer distinguished name.
    pub issuer: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// Start of validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_before: String,
    /// End of validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before_unix: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
}

/// One parsed X.509 certificate, cheap to clone. Two certificates are equal
/// when their fingerprints are: the SHA-256 of the DER determines the DER, and
/// with it the canonical PEM and the summary.
#[derive(Clone)]
pub struct Certificate {
    pem: Arc<str>,
    fingerprint: Fingerprint,
    der: Arc<[u8]>,
    summary: Arc<CertificateSummary>,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.der, &other.der) || self.fingerprint == other.fingerprint
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint.as_str())
            .field("subject", &self.summary.subject)
            .field("not_after", &self.summary.not_after)
            .finish_non_exhaustive()
    }
}

/// Finds `needle` in `haystack` from `from` on.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// What the `-----BEGIN` markers of the input announce.
struct MarkerScan {
    certificates: usize,
    other: Option<OtherSection>,
    issue: Option<PemIssue>,
}

fn classify_private_key(label: &[u8]) -> Option<PrivateKeyKind> {
    find(label, b"PRIVATE KEY", 0)?;
    Some(match label {
        b"PRIVATE KEY" => PrivateKeyKind::Pkcs8,
        b"ENCRYPTED PRIVATE KEY" => PrivateKeyKind::EncryptedPkcs8,
        b"RSA PRIVATE KEY" => PrivateKeyKind::Rsa,
        b"EC PRIVATE KEY" => PrivateKeyKind::Ec,
        _ => PrivateKeyKind::Other,
    })
}

fn classify_other(label: &[u8]) -> OtherSection {
    match label {
        b"CERTIFICATE REQUEST" | b"NEW CERTIFICATE REQUEST" => OtherSection::CertificateRequest,
        b"X509 CRL" => OtherSection::Crl,
        b"PUBLIC KEY" | b"RSA PUBLIC KEY" => OtherSection::PublicKey,
        b"TRUSTED CERTIFICATE" => OtherSection::TrustedCertificate,
        b"PKCS7" => OtherSection::Pkcs7,
        _ => OtherSection::Unrecognised,
    }
}

/// Scans every `-----BEGIN ` marker (wherever it stands) of `text`, whose lines
/// are already trimmed. A private key is reported at once.
fn scan_markers(text: &[u8]) -> Result<MarkerScan, CertificateError> {
    let mut scan = MarkerScan {
        certificates: 0,
        other: None,
        issue: None,
    };
    let mut from = 0;
    while let Some(start) = find(text, BEGIN_MARKER, from) {
        let label_start = start + BEGIN_MARKER.len();
        from = label_start;
        let line_end = text
            .get(label_start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n' || b == b'\r'))
            .map_or(text.len(), |i| i + label_start);
        let line = text.get(label_start..line_end).unwrap_or_default();
        let label = find(line, DASHES, 0).and_then(|end| line.get(..end));
        let at_line_start = start == 0 || matches!(text.get(start - 1), Some(b'\n' | b'\r'));
        // A key is a key even when its marker is malformed or misplaced.
        if let Some(kind) = classify_private_key(label.unwrap_or(line)) {
            return Err(CertificateError::PrivateKeyGiven { kind });
        }
        let Some(label) = label else {
            scan.issue.get_or_insert(PemIssue::UnterminatedMarker);
            continue;
        };
        if !at_line_start {
            scan.issue.get_or_insert(PemIssue::MarkerNotAtLineStart);
        }
        if label == b"CERTIFICATE" {
            scan.certificates += 1;
        } else {
            scan.other.get_or_insert(classify_other(label));
        }
    }
    Ok(scan)
}

fn pem_issue(error: &pem::Error) -> PemIssue {
    match error {
        pem::Error::MissingSectionEnd { .. } => PemIssue::MissingSectionEnd,
        pem::Error::IllegalSectionStart { .. } => PemIssue::IllegalSectionStart,
        pem::Error::Base64Decode(_) => PemIssue::InvalidBase64,
        _ => PemIssue::Other,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (proleptic
/// Gregorian calendar, days-from-civil inverse by Howard Hinnant).
fn rfc3339_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Canonical PEM: standard base64 in 64-character lines between the markers.
fn canonical_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 60);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

impl Certificate {
    /// Parses exactly one PEM certificate; see the module documentation for
    /// everything that is refused. Lines may carry surrounding whitespace
    /// (e.g. indentation) and text outside PEM sections is ignored.
    pub fn from_pem(pem: &str) -> Result<Certificate, CertificateError> {
        if pem.trim().is_empty() {
            return Err(CertificateError::Empty);
        }
        // Look for keys before the size check: the warning matters more.
        if pem.len() > MAX_CERTIFICATE_BYTES {
            scan_markers(pem.as_bytes())?;
            return Err(CertificateError::TooLarge { size: pem.len() });
        }
        let trimmed: String = pem
            .lines()
            .map(|line| line.trim_matches(|c: char| c.is_ascii_whitespace()))
            .collect::<Vec<_>>()
            .join("\n");
        let scan = scan_markers(trimmed.as_bytes())?;
        if scan.certificates > 1 {
            return Err(CertificateError::TooManyCertificates {
                count: scan.certificates,
            });
        }
        if let Some(section) = scan.other {
            return Err(CertificateError::UnexpectedSection { section });
        }
        if let Some(issue) = scan.issue {
            return Err(CertificateError::MalformedPem { issue });
        }
        if scan.certificates == 0 {
            return Err(CertificateError::NoCertificate);
        }
        let mut der = None;
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(trimmed.as_bytes()) {
            match item {
                Ok((SectionKind::Certificate, bytes)) if der.is_none() => der = Some(bytes),
                Ok((SectionKind::Certificate, _)) => {
                    return Err(CertificateError::TooManyCertificates { count: 2 });
                }
                Ok(_) => {
                    return Err(CertificateError::UnexpectedSection {
                        section: OtherSection::Unrecognised,
                    });
                }
                Err(e) => {
                    return Err(CertificateError::MalformedPem {
                        issue: pem_issue(&e),
                    });
                }
            }
        }
        let der = der.ok_or(CertificateError::MalformedPem {
            issue: PemIssue::Other,
        })?;
        Certificate::from_der(&der)
    }

    /// Accepts the DER encoding of exactly one X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertificateError> {
        if der.is_empty() {
            return Err(CertificateError::Empty);
        }
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge { size: der.len() });
        }
        let (rest, parsed) =
            x509_parser::parse_x509_certificate(der).map_err(|e| CertificateError::NotX509 {
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(CertificateError::TrailingData { count: rest.len() });
        }
        let validity = parsed.validity();
        let not_before_unix = validity.not_before.timestamp();
        let not_after_unix = validity.not_after.timestamp();
        let summary = CertificateSummary {
            subject: parsed.subject().to_string(),
            issuer: parsed.issuer().to_string(),
            serial: hex::encode(parsed.raw_serial()),
            not_before: rfc3339_utc(not_before_unix),
            not_after: rfc3339_utc(not_after_unix),
            not_before_unix,
            not_after_unix,
        };
        Ok(Certificate {
            pem: Arc::from(canonical_pem(der)),
            fingerprint: Fingerprint::of_der(der),
            der: Arc::from(der),
            summary: Arc::new(summary),
        })
    }

    /// The canonical PEM (one certificate, 64-character base64 lines, final newline).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The `sha256:` fingerprint of the DER.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Subject, issuer, serial and validity period.
    pub fn summary(&self) -> &CertificateSummary {
        &self.summary
    }
}

impl FromStr for Certificate {
    type Err = CertificateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Certificate::from_pem(s)
    }
}

impl Serialize for Certificate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pem)
    }
}

impl<'de> Deserialize<'de> for Certificate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Certificate::from_pem(&s).map_err(serde::de::Error::custom)
    }
}

//! `spalding partner inspect`: what an operator runs before admitting a
//! partner. Fetches the partner's document through the hardened
//! [`HttpsTransport`] (limits and signature), verifies its content with the
//! core's [`PartnerDocument::verify`] against the VC name and the endpoint
//! it was fetched from, compares its parameters with ours
//! ([`spalding_core::parameters::compatibility`]), and renders party,
//! endpoint, parameters, compatibility, certificate (subject, SANs, validity,
//! fingerprint) and the partner's membership view as text or JSON.
//!
//! [`PartnerDocument::verify`]: spalding_core::document::PartnerDocument::verify

use std::fmt::Write as _;

use serde::Serialize;
use spalding_core::certificate::{Certificate, CertificateSummary, Fingerprint};
use spalding_core::document::{DocumentError, MemberView};
use spalding_core::name::PartyName;
use spalding_core::parameters::{Mismatch, Parameters, ValidatedParameters, compatibility};
use spalding_core::spec::{Endpoint, EndpointError, Partner, State};

use crate::transport::{FetchError, HttpsTransport, TransportBuildError, TransportOptions};

/// What to inspect and how.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// The VC name.
    pub virtual_cloud: String,
    /// Our parameters, to check compatibility against.
    pub parameters: ValidatedParameters,
    /// Transport options (extra CA bundle, plain HTTP for development, limits).
    pub transport: TransportOptions,
}

/// Why an inspection failed; one line each.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The endpoint is not a valid partner endpoint.
    #[error("invalid endpoint: {0}")]
    Endpoint(#[from] EndpointError),
    /// The transport could not be built (e.g. a bad CA bundle).
    #[error("{0}")]
    Transport(#[from] TransportBuildError),
    /// The fetch was refused.
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// The document was fetched, but its content is refused.
    #[error("document refused: {0}")]
    Document(#[from] DocumentError),
}

/// A verified partner document, ready to print.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The VC.
    pub virtual_cloud: String,
    /// The partner.
    pub party: PartyName,
    /// The endpoint the document claims (equal to the inspected one over HTTPS).
    pub endpoint: Endpoint,
    /// The URL fetched.
    pub fetched_from: String,
    /// The document's sequence number.
    pub sequence: u64,
    /// The partner's state.
    pub state: State,
    /// The partner's parameters.
    pub parameters: Parameters,
    /// Whether they equal ours.
    pub compatible: bool,
    /// Every differing field.
    pub mismatches: Vec<Mismatch>,
    /// Subject, issuer, serial and validity of the partner's VCP certificate.
    pub certificate: CertificateSummary,
    /// Its subject alternative names.
    pub subject_alternative_names: Vec<String>,
    /// Its fingerprint: what the operator admits.
    pub fingerprint: Fingerprint,
    /// The partner's membership view.
    pub members: Vec<MemberView>,
}

/// Fetches, verifies and summarises the document of `options.virtual_cloud`
/// at `endpoint`. With plain HTTP allowed, an `http://` endpoint is fetched
/// and checked against the endpoint the document itself claims.
pub async fn inspect(endpoint: &str, options: InspectOptions) -> Result<Inspection, InspectError> {
    let transport = HttpsTransport::new(options.transport.clone())?;
    let vc = options.virtual_cloud.as_str();
    let plain = endpoint.trim().to_ascii_lowercase().starts_with("http://");
    let (document, fetched_from, expected) = if plain {
        let base = endpoint.trim().trim_end_matches('/');
        let url = format!("{base}/v1/virtual-clouds/{vc}");
        let document = transport.fetch_url(&url).await?;
        let claimed = document.body.endpoint.clone();
        (document, url, claimed)
    } else {
        let endpoint = Endpoint::new(endpoint)?;
        let document = transport.fetch_document(vc, &endpoint).await?;
        (document, endpoint.document_url(vc), endpoint)
    };
    let partner = Partner {
        name: document.body.party.clone(),
        endpoint: expected,
    };
    let verified = document.verify(vc, &partner)?;
    let mismatches = compatibility(&options.parameters, &verified.parameters);
    Ok(Inspection {
        virtual_cloud: vc.to_owned(),
        party: verified.party,
        endpoint: document.body.endpoint.clone(),
        fetched_from,
        sequence: verified.sequence,
        state: verified.state,
        parameters: verified.parameters.to_wire(),
        compatible: mismatches.is_empty(),
        mismatches,
        subject_alternative_names: subject_alternative_names(&verified.certificate),
        certificate: verified.certificate.summary().clone(),
        fingerprint: verified.certificate.fingerprint().clone(),
        members: verified.members,
    })
}

impl Inspection {
    /// A human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let p = &self.parameters;
        let c = &self.certificate;
        let _ = writeln!(out, "virtual cloud:  {}", self.virtual_cloud);
        let _ = writeln!(out, "party:          {}", self.party);
        let _ = writeln!(out, "endpoint:       {}", self.endpoint);
        let _ = writeln!(out, "fetched from:   {}", self.fetched_from);
        let _ = writeln!(out, "state:          {}", self.state);
        let _ = writeln!(out, "sequence:       {}", self.sequence);
        let _ = writeln!(out, "signature:      valid");
        let _ = writeln!(out, "parameters:");
        let _ = writeln!(out, "  prime:             {}", p.prime);
        let _ = writeln!(
            out,
            "  r:                 {}",
            p.r.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "  rInv:              {}",
            p.r_inv.as_deref().unwrap_or("-")
        );
        if let Some(word_size) = p.word_size {
            let _ = writeln!(out, "  wordSize:          {word_size}");
        }
        let _ = writeln!(out, "  gf2nBitLength:     {}", p.gf2n_bit_length);
        let _ = writeln!(out, "  gf2nStorageSize:   {}", p.gf2n_storage_size);
        if self.compatible {
            let _ = writeln!(out, "compatible:     yes");
        } else {
            let _ = writeln!(out, "compatible:     NO");
            for mismatch in &self.mismatches {
                let _ = writeln!(out, "  {mismatch}");
            }
        }
        let _ = writeln!(out, "certificate:");
        let _ = writeln!(out, "  subject:     {}", c.subject);
        let _ = writeln!(out, "  issuer:      {}", c.issuer);
        let _ = writeln!(
            out,
            "  SANs:        {}",
            if self.subject_alternative_names.is_empty() {
                "-".to_owned()
            } else {
                self.subject_alternative_names.join(", ")
            }
        );
        let _ = writeln!(out, "  valid:       {} to {}", c.not_before, c.not_after);
        let _ = writeln!(out, "  fingerprint: {}", self.fingerprint);
        let _ = writeln!(out, "members (as {} sees them):", self.party);
        for m in &self.members {
            let _ = writeln!(
                out,
                "  {:<20} {:<40} {:<12} {}",
                m.name.as_str(),
                m.endpoint.as_str(),
                if m.admitted {
                    "admitted"
                } else {
                    "not admitted"
                },
                m.fingerprint.as_ref().map_or("-", |f| f.as_str()),
            );
        }
        out
    }
}

/// DNS names and IP addresses of the certificate's SAN extension.
pub fn subject_alternative_names(certificate: &Certificate) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate.der()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| format!("IP:{}", std::net::Ipv4Addr::from(b))),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| format!("IP:{}", std::net::Ipv6Addr::from(b))),
                _ => None,
            },
            GeneralName::URI(uri) => Some(format!("URI:{uri}")),
            _ => None,
        })
        .collect()
}

//! The simulation CA: one certificate authority whose certificate every
//! simulated party's partner transport trusts, and which issues every
//! party's VCP certificate (the partner-info servers present it directly).
//! A party's identity can therefore be replaced at any time
//! ([`super::Simulation::rotate_identity`]) without touching the other
//! parties' transports. Trust in a partner never rests on this CA: partners
//! are admitted by the fingerprint of their VCP certificate, as everywhere
//! (DESIGN.md: in the embedded mode the TLS certificates come from one
//! simulation CA that every simulated party trusts).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::PrivateKeyDer;
use spalding_core::certificate::Certificate;

use crate::identity::VcpIdentity;

/// Why the CA or a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen failed to generate a key or a certificate.
    #[error("generate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The issued certificate or key was refused.
    #[error("issued identity: {0}")]
    Identity(String),
}

/// An in-process CA; its private key never leaves this value.
pub struct SimulationCa {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

impl SimulationCa {
    /// A new CA with an ECDSA P-256 key.
    pub fn new() -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "spalding simulation CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key)?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (PEM), for the transports' extra trusted roots.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A new VCP identity for `party`: a fresh ECDSA P-256 key and a
    /// certificate for `hosts` (DNS names or IP addresses) issued by this CA.
    pub fn issue(&self, party: &str, hosts: &[String]) -> Result<VcpIdentity, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, party);
        let issued = params.signed_by(&key, &self.issuer)?;
        let certificate =
            Certificate::from_der(issued.der()).map_err(|e| CaError::Identity(e.to_string()))?;
        VcpIdentity::from_parts(
            certificate,
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| CaError::Identity(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issued_identities_differ_and_name_the_party() {
        let ca = SimulationCa::new().unwrap();
        let hosts = ["127.0.0.1".to_owned()];
        let first = ca.issue("party-0", &hosts).unwrap();
        let second = ca.issue("party-0", &hosts).unwrap();
        assert_ne!(first.fingerprint(), second.fingerprint());
        assert!(first.certificate().summary().subject.contains("party-0"));
        assert!(
            ca.certificate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }
}

//! The `VirtualCloud` resource as the core sees it, independent of kube: the
//! spec a user writes (parameters and partners), its validation into a
//! [`ValidatedSpec`], the lifecycle [`State`] and the status Spalding reports.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::digest;
use crate::name::{NameError, PartyName};
use crate::parameters::{ParameterError, Parameters, ValidatedParameters};

/// Most partners a VC may name. MP-SPDZ's HE-based offline phase grows with
/// the square of the party count; beyond this a VC is not practical.
pub const MAX_PARTNERS: usize = 128;
/// Longest endpoint URL accepted.
pub const MAX_ENDPOINT_LENGTH: usize = 2048;

/// What a user writes in `VirtualCloud.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudSpec {
    /// The MPC field parameters every party must share.
    pub parameters: Parameters,
    /// The other parties; the local party is not listed.
    #[serde(default)]
    pub partners: Vec<PartnerEntry>,
}

/// One partner as written in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerEntry {
    /// The partner's party name (normalised to a DNS-1123 label).
    pub name: String,
    /// The partner's Spalding base URL (`https://…`).
    pub endpoint: String,
}

/// A partner's Spalding base URL: `https`, a host, an optional path, no
/// query, fragment or credentials, no trailing slash.
///
/// Carries the URL's 128-bit XXH3 digest, computed once when it is parsed:
/// `decide` compares endpoints of records, formations and documents through
/// it (see [`crate::digest`]). Equality, order and hashing are the URL's.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    /// The normalised URL.
    url: String,
    /// XXH3-128 of `url`; a function of it, never serialised.
    digest: u128,
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.url == other.url
    }
}

impl Eq for Endpoint {}

impl PartialOrd for Endpoint {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Endpoint {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.url.cmp(&other.url)
    }
}

impl std::hash::Hash for Endpoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.url.hash(state);
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Endpoint").field(&self.url).finish()
    }
}

/// Why an endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not `https://`.
    #[error("endpoint {0:?} must start with https://")]
    NotHttps(String),
    /// No host after the scheme.
    #[error("endpoint {0:?} has no host")]
    NoHost(String),
    /// Whitespace, control characters, credentials, query or fragment.
    #[error("endpoint {0:?} must not contain whitespace, '@', '?' or '#'")]
    Forbidden(String),
    /// Too long.
    #[error("endpoint is {0} characters long, at most {MAX_ENDPOINT_LENGTH} are allowed")]
    TooLong(usize),
}

impl Endpoint {
    /// Validates `raw` and removes trailing slashes.
    pub fn new(raw: &str) -> Result<Self, EndpointError> {
        let raw = raw.trim();
        if raw.len() > MAX_ENDPOINT_LENGTH {
            return Err(EndpointError::TooLong(raw.len()));
        }
        let shown = || raw.chars().take(120).collect::<String>();
        let Some(rest) = raw
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .and_then(|_| raw.get(8..))
        else {
            return Err(EndpointError::NotHttps(shown()));
        };
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | '?' | '#'))
        {
            return Err(EndpointError::Forbidden(shown()));
        }
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') {
            return Err(EndpointError::NoHost(shown()));
        }
        let trimmed = rest.trim_end_matches('/');
        let url = format!(
            "https://{}{}",
            host.to_ascii_lowercase(),
            &trimmed[host.len()..]
        );
        let digest = digest::of_bytes(url.as_bytes(), digest::ENDPOINT_SEED);
        Ok(Self { url, digest })
    }

    /// The normalised URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL's 128-bit digest (XXH3), computed when it was parsed.
    pub fn digest(&self) -> u128 {
        self.digest
    }

    /// The host (and port) part, as written after `https://`.
    pub fn authority(&self) -> &str {
        self.url["https://".len()..]
            .split('/')
            .next()
            .unwrap_or_default()
    }

    /// Where the partner-info document of `vc` is served (see DESIGN.md).
    pub fn document_url(&self, vc: &str) -> String {
        format!("{}/v1/virtual-clouds/{vc}", self.url)
    }
}

impl TryFrom<String> for Endpoint {
    type Error = EndpointError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Endpoint> for String {
    fn from(value: Endpoint) -> Self {
        value.url
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// A partner after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Normalised party name.
    pub name: PartyName,
    /// Normalised endpoint.
    pub endpoint: Endpoint,
}

/// A spec that passed validation: parameters checked, partners normalised,
/// unique, sorted by name and distinct from the local party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedSpec {
    /// The parameters.
    pub parameters: ValidatedParameters,
    /// The partners, sorted by name.
    pub partners: Vec<Partner>,
}

/// Why a spec was refused. Every variant names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The parameters are invalid.
    #[error("spec.parameters: {0}")]
    Parameters(#[from] ParameterError),
    /// No partner is listed.
    #[error("spec.partners is empty; a Virtual Cloud needs at least one partner")]
    NoPartners,
    /// Too many partners.
    #[error("spec.partners lists {0} partners, at most {MAX_PARTNERS} are supported")]
    TooManyPartners(usize),
    /// A partner name is invalid.
    #[error("spec.partners[{index}].name: {source}")]
    PartnerName {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        source: NameError,
    },
    /// A partner endpoint is invalid.
    #[error("spec.partners[{index}].endpoint: {source}")]
    PartnerEndpoint {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        source: EndpointError,
    },
    /// Two partners share a name.
    #[error("spec.partners names {0:?} twice (names are compared in lowercase)")]
    DuplicateName(String),
    /// Two partners share an endpoint.
    #[error("spec.partners lists endpoint {0} twice")]
    DuplicateEndpoint(String),
    /// A partner has the local party's name.
    #[error("spec.partners names {0:?}, which is this party itself; list only the other parties")]
    NamesSelf(String),
}

impl VirtualCloudSpec {
    /// Validates the spec as seen by the party called `local`.
    pub fn validate(&self, local: &PartyName) -> Result<ValidatedSpec, SpecError> {
        let parameters = self.parameters.validate()?;
        if self.partners.is_empty() {
            return Err(SpecError::NoPartners);
        }
        if self.partners.len() > MAX_PARTNERS {
            return Err(SpecError::TooManyPartners(self.partners.len()));
        }
        let mut partners = Vec::with_capacity(self.partners.len());
        for (index, entry) in self.partners.iter().enumerate() {
            let name = PartyName::new(&entry.name)
                .map_err(|source| SpecError::PartnerName { index, source })?;
            let endpoint = Endpoint::new(&entry.endpoint)
                .map_err(|source| SpecError::PartnerEndpoint { index, source })?;
            if &name == local {
                return Err(SpecError::NamesSelf(name.to_string()));
            }
            partners.push(Partner { name, endpoint });
        }
        partners.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = partners.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(SpecError::DuplicateName(pair[0].name.to_string()));
        }
        let mut endpoints: Vec<&Endpoint> = partners.iter().map(|p| &p.endpoint).collect();
        endpoints.sort();
        if let Some(pair) = endpoints.windows(2).find(|w| w[0] == w[1]) {
            return Err(SpecError::DuplicateEndpoint(pair[0].to_string()));
        }
        Ok(ValidatedSpec {
            parameters,
            partners,
        })
    }
}

/// The lifecycle of a VC, in order (see the CSEP).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Partners are fetched and admitted; waits for the group barrier.
    #[default]
    Admission,
    /// MAC key share and HE keys are being generated.
    Initializing,
    /// Configuration is written and foundation services start.
    Starting,
    /// Services run and are exposed through the gateways.
    Ready,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Admission => "admission",
            Self::Initializing => "initializing",
            Self::Starting => "starting",
            Self::Ready => "ready",
        })
    }
}

/// What Spalding reports in `VirtualCloud.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudStatus {
    /// The lifecycle state.
    #[serde(default)]
    pub state: State,
    /// This party's player number (0-based; player 0 is the CS master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<u32>,
    /// Number of players, this party included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_count: Option<u32>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions saying what holds and what is missing.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn endpoint_is_normalised() {
        let e = Endpoint::new(" HTTPS://Party-2.DE/foo/ ").unwrap();
        assert_eq!(e.as_str(), "https://party-2.de/foo");
        assert_eq!(e.authority(), "party-2.de");
        assert_eq!(
            e.document_url("vc"),
            "https://party-2.de/foo/v1/virtual-clouds/vc"
        );
    }

    #[test]
    fn endpoint_refusals() {
        assert!(matches!(
            Endpoint::new("http://a"),
            Err(EndpointError::NotHttps(_))
        ));
        assert!(matches!(
            Endpoint::new("https://"),
            Err(EndpointError::NoHost(_))
        ));
        assert!(matches!(
            Endpoint::new("https://u@h"),
            Err(EndpointError::Forbidden(_))
        ));
        assert!(matches!(
            Endpoint::new("https://h/?q"),
            Err(EndpointError::Forbidden(_))
        ));
        assert!(matches!(
            Endpoint::new("h"),
            Err(EndpointError::NotHttps(_))
        ));
        assert!(matches!(
            Endpoint::new("ü"),
            Err(EndpointError::NotHttps(_))
        ));
    }

    proptest! {
        #[test]
        fn endpoint_never_panics(raw in "\\PC{0,40}", path in "[a-zA-Z0-9/é:.-]{0,20}") {
            let _ = Endpoint::new(&raw);
            if let Ok(e) = Endpoint::new(&format!("https://{path}")) {
                prop_assert!(e.as_str().starts_with("https://"));
                prop_assert_eq!(Endpoint::new(e.as_str()).unwrap(), e.clone());
                let back: Endpoint = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
                prop_assert_eq!(back.digest(), e.digest());
                prop_assert_eq!(serde_json::to_string(&e).unwrap(), serde_json::to_string(e.as_str()).unwrap());
                prop_assert_eq!(format!("{e:?}"), format!("Endpoint({:?})", e.as_str()));
            }
        }
    }
}

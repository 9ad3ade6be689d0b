//! A single-party document: a party that knows only itself. Used by the
//! hidden `spalding serve-document` command (the partner-endpoint benchmark),
//! the examples and the tests; a real party's document is built by the core's
//! `decide` and published through the `Cluster` port.

use spalding_core::document::{DocumentBody, MemberView, PROTOCOL_VERSION};
use spalding_core::name::PartyName;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::spec::{Endpoint, State};

use crate::identity::VcpIdentity;

/// The document body of `party` in `vc`, alone in its membership, in the
/// `Admission` state.
pub fn single_party_body(
    vc: &str,
    party: &PartyName,
    endpoint: &Endpoint,
    identity: &VcpIdentity,
    parameters: &ValidatedParameters,
) -> DocumentBody {
    DocumentBody {
        protocol: PROTOCOL_VERSION.to_owned(),
        virtual_cloud: vc.to_owned(),
        party: party.clone(),
        endpoint: endpoint.clone(),
        parameters: parameters.clone(),
        certificate: identity.certificate().clone(),
        fingerprint: identity.fingerprint().clone(),
        members: vec![MemberView {
            name: party.clone(),
            endpoint: endpoint.clone(),
            fingerprint: Some(identity.fingerprint().clone()),
            admitted: true,
        }]
        .into(),
        state: State::Admission,
    }
}

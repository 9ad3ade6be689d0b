//! The partner-info document this party publishes about a VC, derived from
//! the same evaluation as the barrier: its own facts and, for every member,
//! the fingerprint it knows and whether it admitted it. Compared with the last
//! published body without building a new one, so a VC at rest costs nothing.
//!
//! A member's fingerprint learned but not admitted yet does not republish the
//! document on its own (it is carried by the next republish): a partner acts
//! only on the lines we admitted (whether we admitted it, and the complete
//! view once we admitted everyone), so republishing for it would cost a
//! write here and a fetch at every partner for nothing they act on.

use crate::document::{DocumentBody, MemberView, PROTOCOL_VERSION};
use crate::machine::Observed;
use crate::machine::barrier::GroupMember;
use crate::spec::{State, ValidatedSpec};

/// One member's line in our document: its view and whether we admitted it.
pub(crate) struct Line<'a> {
    pub member: GroupMember<'a>,
    pub admitted: bool,
}

/// Whether `published` already says what we would publish.
pub(crate) fn published_matches(
    published: &DocumentBody,
    obs: &Observed,
    spec: &ValidatedSpec,
    lines: &[Line<'_>],
    state: State,
) -> bool {
    published.protocol == PROTOCOL_VERSION
        && published.virtual_cloud == obs.vc.name
        && published.party == obs.identity.name
        && published.endpoint == obs.identity.endpoint
        && published.state == state
        && published.fingerprint == *obs.identity.certificate.fingerprint()
        && published.parameters == spec.parameters
        && published.certificate == obs.identity.certificate
        && published.members.len() == lines.len()
        && published.members.iter().zip(lines).all(|(view, line)| {
            view.name == *line.member.name
                && view.endpoint == *line.member.endpoint
                && view.admitted == line.admitted
                && (!line.admitted || view.fingerprint.as_ref() == line.member.fingerprint)
        })
}

/// The body we publish.
pub(crate) fn body(
    obs: &Observed,
    spec: &ValidatedSpec,
    lines: &[Line<'_>],
    state: State,
) -> DocumentBody {
    DocumentBody {
        protocol: PROTOCOL_VERSION.to_owned(),
        virtual_cloud: obs.vc.name.clone(),
        party: obs.identity.name.clone(),
        endpoint: obs.identity.endpoint.clone(),
        parameters: spec.parameters.clone(),
        certificate: obs.identity.certificate.clone(),
        fingerprint: obs.identity.certificate.fingerprint().clone(),
        members: lines
            .iter()
            .map(|line| MemberView {
                name: line.member.name.clone(),
                endpoint: line.member.endpoint.clone(),
                fingerprint: line.member.fingerprint.cloned(),
                admitted: line.admitted,
            })
            .collect(),
        state,
    }
}

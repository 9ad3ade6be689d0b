//! The partner-info document this party publishes about a VC, derived from
//! the same evaluation as the barrier: its own facts and, for every member,
//! the fingerprint it knows and whether it admitted it. Compared with the last
//! published body without building a new one (the member lines through their
//! digest), so a VC at rest costs next to nothing.
//!
//! A member's fingerprint learned but not admitted yet does not republish the
//! document on its own (it is carried by the next republish): a partner acts
//! only on the lines we admitted (whether we admitted it, and the complete
//! view once we admitted everyone), so republishing for it would cost a
//! write here and a fetch at every partner for nothing they act on. The
//! member lines' digest therefore folds in a fingerprint only where the line
//! is admitted ([`crate::digest::member_view_words`]).

use crate::digest::Digest;
use crate::document::{DocumentBody, MemberView, PROTOCOL_VERSION};
use crate::machine::Observed;
use crate::machine::barrier::GroupMember;
use crate::spec::{State, ValidatedSpec};

/// One member's line in our document: its view and whether we admitted it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub member: GroupMember<'a>,
    pub admitted: bool,
}

/// Whether `published` already says what we would publish: its own facts
/// compared one by one (our endpoint through its digest), its `count` member
/// lines through their digest (`member_views`, see
/// [`crate::document::MemberViews::digest`]). The body was written by this
/// party, so the digests only need to tell accidental differences apart.
pub(crate) fn published_matches(
    published: &DocumentBody,
    obs: &Observed,
    spec: &ValidatedSpec,
    count: usize,
    member_views: Digest,
    state: State,
) -> bool {
    published.protocol == PROTOCOL_VERSION
        && published.virtual_cloud == obs.vc.name
        && published.party == obs.identity.name
        && published.endpoint.digest() == obs.identity.endpoint.digest()
        && published.state == state
        && published.fingerprint == *obs.identity.certificate.fingerprint()
        && published.parameters == spec.parameters
        && published.certificate == obs.identity.certificate
        && published.members.len() == count
        && published.members.digest() == member_views
}

/// The body we publish.
pub(crate) fn body<'a>(
    obs: &Observed,
    spec: &ValidatedSpec,
    lines: impl Iterator<Item = Line<'a>>,
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

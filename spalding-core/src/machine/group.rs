//! The group as this party sees it now, in player order: one line per member
//! (ours at our player position), walked rather than gathered, and the
//! digests of that walk ([`Expected`]) that applied formations, the
//! published document and partners' views are compared with in constant time.
//! Shared by `decide`'s full pipeline and its fast path at rest, so both
//! compare exactly the same things.

use std::iter::once;

use crate::configuration::{Formation, FormedMember};
use crate::digest::{self, Digest, Fold};
use crate::document::ViewDigest;
#[cfg(doc)]
use crate::document::view_digest;
use crate::machine::Observed;
use crate::machine::barrier::{GroupMember, PartnerEval};
use crate::machine::publish::Line;
use crate::partner::{PartnerRecord, is_certificate_config_map_name};
use crate::ports::VcKey;
use crate::spec::{Partner, ValidatedSpec};

/// The group's lines in player order: `line(i)` for the partners `0..count`
/// (in name order), with `own` inserted at `position`.
pub(crate) fn in_player_order<'a, F>(
    count: usize,
    own: Line<'a>,
    position: usize,
    line: F,
) -> impl Iterator<Item = Line<'a>> + Clone
where
    F: Fn(usize) -> Option<Line<'a>> + Clone,
{
    let position = position.min(count);
    (0..position)
        .filter_map(line.clone())
        .chain(once(own))
        .chain((position..count).filter_map(line))
}

/// The lines of the evaluated group, with ours at `position`.
pub(crate) fn lines<'a, 'b>(
    evals: &'b [PartnerEval<'a>],
    own: Line<'a>,
    position: usize,
) -> impl Iterator<Item = Line<'a>> + Clone + 'b {
    in_player_order(evals.len(), own, position, |i| {
        evals.get(i).map(partner_line)
    })
}

/// A partner's line in the group view: its certificate fetched now, else
/// the one stored.
fn partner_line<'a>(eval: &PartnerEval<'a>) -> Line<'a> {
    let certificate = eval.document.map(|d| &d.certificate).or_else(|| {
        eval.observation
            .and_then(|o| o.stored.as_ref())
            .and_then(|s| s.certificate.as_ref())
    });
    Line {
        member: GroupMember {
            name: &eval.partner.name,
            endpoint: &eval.partner.endpoint,
            certificate,
            fingerprint: eval.fingerprint,
        },
        admitted: eval.admitted,
    }
}

/// Our own line in the group view.
pub(crate) fn own_line(obs: &Observed) -> Line<'_> {
    let me = &obs.identity;
    Line {
        member: GroupMember {
            name: &me.name,
            endpoint: &me.endpoint,
            certificate: Some(&me.certificate),
            fingerprint: Some(me.certificate.fingerprint()),
        },
        admitted: true,
    }
}

/// The digests of the group as known now, each to be compared with what
/// was applied or published (their digests were computed when those were
/// built or read).
pub(crate) struct Expected {
    /// Number of members, this party included.
    pub count: usize,
    /// Names and endpoints ([`crate::configuration::FormedMembers::players_digest`]).
    pub players: Digest,
    /// Every member's certificate
    /// ([`crate::configuration::FormedMembers::certificates_digest`]); `None`
    /// when one is not known.
    pub certificates: Option<Digest>,
    /// The fully admitted view ([`view_digest`]), known only when every
    /// partner was fetched now.
    pub view: Option<ViewDigest>,
    /// The member lines of our document ([`crate::document::MemberViews::digest`]).
    pub member_views: Digest,
}

impl Expected {
    /// The digests of the group `lines`, in one walk.
    pub fn of<'a>(lines: impl Iterator<Item = Line<'a>>, all_fresh: bool) -> Self {
        let mut digests = GroupDigests::new();
        for line in lines {
            digests.push(line);
        }
        digests.finish(all_fresh)
    }
}

/// [`Expected`] under way: the group's lines folded in one at a time, in
/// player order.
pub(crate) struct GroupDigests {
    count: usize,
    players: Fold,
    certificates: Option<Fold>,
    view: Fold,
    member_views: Fold,
}

impl GroupDigests {
    /// No line yet.
    pub fn new() -> Self {
        Self {
            count: 0,
            players: Fold::new(digest::seeds::PLAYERS),
            certificates: Some(Fold::new(digest::seeds::CERTIFICATES)),
            view: Fold::new(digest::seeds::VIEW),
            member_views: Fold::new(digest::seeds::MEMBER_VIEWS),
        }
    }

    /// Folds in the next line. The view folds in the members whose
    /// fingerprint is known, as [`view_digest`] does; a member's line in our
    /// document is the same word plus whether we admitted it.
    pub fn push(&mut self, Line { member, admitted }: Line<'_>) {
        self.count += 1;
        let word = digest::member_word(member.name, member.endpoint);
        self.players = self.players.push(word);
        self.certificates = self
            .certificates
            .zip(member.certificate)
            .map(|(fold, c)| fold.push(digest::fingerprint_word(c.fingerprint())));
        let line = digest::with_fingerprint(word, member.fingerprint);
        if member.fingerprint.is_some() {
            self.view = self.view.push(line);
        }
        // As [`digest::member_view_words`]: the fingerprint only where admitted.
        let published = if admitted {
            line
        } else {
            digest::with_fingerprint(word, None)
        };
        self.member_views = self
            .member_views
            .push(published)
            .push(digest::Digest::from(admitted));
    }

    /// The digests; the view only when every partner was fetched now.
    pub fn finish(self, all_fresh: bool) -> Expected {
        Expected {
            count: self.count,
            players: self.players.finish(),
            certificates: self.certificates.map(Fold::finish),
            view: all_fresh.then(|| self.view.finish()),
            member_views: self.member_views.finish(),
        }
    }
}

/// Whether `applied` was built for the group as known now (`expected`).
/// With `certificates`, every member's certificate must match too. Constant
/// time: the members compare through their digests.
pub(crate) fn formation_matches(
    applied: &Formation,
    player_id: u32,
    spec: &ValidatedSpec,
    expected: &Expected,
    certificates: bool,
) -> bool {
    applied.player_id == player_id
        && applied.parameters == spec.parameters
        && applied.members.len() == expected.count
        && applied.members.players_digest() == expected.players
        && (!certificates || Some(applied.members.certificates_digest()) == expected.certificates)
}

/// Whether the stored `record` already says what this party would write for
/// `partner` whose document carries `parameters`. Endpoints compare through
/// their digests: the record's was written by this party from its spec.
pub(crate) fn record_matches(
    record: &PartnerRecord,
    partner: &Partner,
    parameters: &crate::parameters::ValidatedParameters,
    vc: &VcKey,
) -> bool {
    record.name == partner.name
        && record.endpoint.digest() == partner.endpoint.digest()
        && record.parameters == *parameters
        && record.certificate.namespace == vc.namespace
        && is_certificate_config_map_name(&record.certificate.name, &vc.name, &partner.name)
}

/// The formation of the group; called only when the barrier holds, so every
/// member's certificate is fresh.
pub(crate) fn build_formation<'a>(
    player_id: u32,
    spec: &ValidatedSpec,
    group: impl Iterator<Item = GroupMember<'a>>,
) -> Formation {
    Formation {
        player_id,
        parameters: spec.parameters.clone(),
        members: group
            .filter_map(|g| {
                g.certificate.map(|c| FormedMember {
                    name: g.name.clone(),
                    endpoint: g.endpoint.clone(),
                    certificate: c.clone(),
                })
            })
            .collect(),
    }
}

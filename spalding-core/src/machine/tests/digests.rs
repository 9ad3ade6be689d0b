//! The digests `decide` compares against the walks they replace: two member
//! lists have equal digests exactly when a field-by-field comparison finds
//! them equal, the digests `decide` expects of the group are those of the
//! formation and document it would build, and the digests survive the wire
//! (computed again when read, never written).

use super::*;
use crate::configuration::FormedMembers;
use crate::document::MemberViews;
use crate::machine::barrier::GroupMember;
use crate::machine::group::{Expected, build_formation};
use crate::machine::publish::Line;

/// One generated member: indices into small pools, so that lists often
/// collide and differ in a single field.
#[derive(Debug, Clone)]
struct Member {
    name: usize,
    endpoint: usize,
    certificate: usize,
    fingerprint: Option<usize>,
    admitted: bool,
}

fn member() -> impl Strategy<Value = Member> {
    (
        0usize..3,
        0usize..3,
        0usize..3,
        prop::option::of(0usize..3),
        any::<bool>(),
    )
        .prop_map(
            |(name, endpoint, certificate, fingerprint, admitted)| Member {
                name,
                endpoint,
                certificate,
                fingerprint,
                admitted,
            },
        )
}

fn members() -> impl Strategy<Value = Vec<Member>> {
    prop::collection::vec(member(), 0..4)
}

fn formed(list: &[Member]) -> Vec<FormedMember> {
    list.iter()
        .map(|m| FormedMember {
            name: name(m.name),
            endpoint: endpoint(m.endpoint),
            certificate: pool()[m.certificate].clone(),
        })
        .collect()
}

fn views(list: &[Member]) -> Vec<MemberView> {
    list.iter()
        .map(|m| MemberView {
            name: name(m.name),
            endpoint: endpoint(m.endpoint),
            fingerprint: m.fingerprint.map(|f| pool()[f].fingerprint().clone()),
            admitted: m.admitted,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Digests are equal exactly when the walks find the lists equal.
    #[test]
    fn digests_agree_with_walking_comparisons(a in members(), b in members()) {
        let (fa, fb) = (formed(&a), formed(&b));
        let (da, db) = (FormedMembers::from(fa.clone()), FormedMembers::from(fb.clone()));
        let same_players = fa.len() == fb.len()
            && fa.iter().zip(&fb).all(|(x, y)| x.name == y.name && x.endpoint == y.endpoint);
        let same_certificates = fa.len() == fb.len()
            && fa.iter().zip(&fb).all(|(x, y)| x.certificate == y.certificate);
        prop_assert_eq!(da.players_digest() == db.players_digest(), same_players);
        prop_assert_eq!(da.certificates_digest() == db.certificates_digest(), same_certificates);
        prop_assert_eq!(da == db, fa == fb);

        // Member lines: what partners act on — names, endpoints, whether
        // admitted and, only where admitted, the fingerprint (a fingerprint
        // learned for a member not admitted yet does not republish).
        let (va, vb) = (views(&a), views(&b));
        let (ma, mb) = (MemberViews::from(va.clone()), MemberViews::from(vb.clone()));
        let same_lines = va.len() == vb.len()
            && va.iter().zip(&vb).all(|(x, y)| {
                x.name == y.name
                    && x.endpoint == y.endpoint
                    && x.admitted == y.admitted
                    && (!x.admitted || x.fingerprint == y.fingerprint)
            });
        prop_assert_eq!(ma.digest() == mb.digest(), same_lines);
    }

    /// What `decide` expects of the group is what the formation and the
    /// document body built from the same group carry.
    #[test]
    fn expected_digests_are_those_of_what_is_built(list in members(), all_fresh in any::<bool>()) {
        let names: Vec<PartyName> = list.iter().map(|m| name(m.name)).collect();
        let endpoints: Vec<Endpoint> = list.iter().map(|m| endpoint(m.endpoint)).collect();
        let fingerprints: Vec<Option<&Fingerprint>> =
            list.iter().map(|m| m.fingerprint.map(|f| pool()[f].fingerprint())).collect();
        let lines = (0..list.len()).map(|i| Line {
            member: GroupMember {
                name: &names[i],
                endpoint: &endpoints[i],
                certificate: Some(&pool()[list[i].certificate]),
                fingerprint: fingerprints[i],
            },
            admitted: list[i].admitted,
        });
        let expected = Expected::of(lines.clone(), all_fresh);
        let spec = ValidatedSpec {
            parameters: ValidatedParameters::carbyne_stack_default(),
            partners: Vec::new(),
        };
        let formation = build_formation(0, &spec, lines.clone().map(|l| l.member));
        prop_assert_eq!(expected.count, list.len());
        prop_assert_eq!(expected.players, formation.members.players_digest());
        prop_assert_eq!(expected.certificates, Some(formation.members.certificates_digest()));
        prop_assert_eq!(expected.member_views, MemberViews::from(views(&list)).digest());
        let view = view_digest(
            (0..list.len()).filter_map(|i| fingerprints[i].map(|f| (&names[i], &endpoints[i], f))),
        );
        prop_assert_eq!(expected.view, all_fresh.then_some(view));

        // A member without a known certificate: no formation can match.
        let unknown = Expected::of(
            lines.map(|l| Line { member: GroupMember { certificate: None, ..l.member }, ..l }),
            all_fresh,
        );
        prop_assert_eq!(unknown.certificates.is_none(), !list.is_empty());
    }

    /// On the wire the lists are plain lists; read back, they carry the same
    /// digests.
    #[test]
    fn digests_are_computed_again_when_read(list in members()) {
        let formed = FormedMembers::from(formed(&list));
        let json = serde_json::to_string(&formed).unwrap();
        prop_assert_eq!(&json, &serde_json::to_string(&formed.to_vec()).unwrap());
        let back: FormedMembers = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.players_digest(), formed.players_digest());
        prop_assert_eq!(back.certificates_digest(), formed.certificates_digest());
        prop_assert_eq!(format!("{back:?}"), format!("{:?}", formed.to_vec()));

        let views = MemberViews::from(views(&list));
        let json = serde_json::to_string(&views).unwrap();
        prop_assert_eq!(&json, &serde_json::to_string(&views.to_vec()).unwrap());
        let back: MemberViews = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.digest(), views.digest());
    }

    /// A list changed in place carries the digest of its new content.
    #[test]
    fn edited_lists_carry_fresh_digests(a in members(), b in members()) {
        let mut edited = FormedMembers::from(formed(&a));
        edited.edit(|l| *l = formed(&b));
        let built = FormedMembers::from(formed(&b));
        prop_assert_eq!(edited.players_digest(), built.players_digest());
        prop_assert_eq!(edited.certificates_digest(), built.certificates_digest());
        let mut edited = MemberViews::from(views(&a));
        edited.edit(|l| *l = views(&b));
        prop_assert_eq!(edited.digest(), MemberViews::from(views(&b)).digest());
    }
}

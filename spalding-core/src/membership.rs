//! The members of a Virtual Cloud and their player numbers.
//!
//! Members are this party and every partner; sorted bytewise by normalised
//! party name, their index is the player number (DESIGN.md). Every party
//! computes the same order from the same set, so player numbers agree without
//! any coordination; player 0 is the Carbyne Stack "master".

use serde::{Deserialize, Serialize};

use crate::name::PartyName;
use crate::spec::{Endpoint, Partner};

/// One member of a VC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Party name.
    pub name: PartyName,
    /// Spalding base URL.
    pub endpoint: Endpoint,
}

/// All members in player order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    members: Vec<Member>,
}

impl Membership {
    /// The membership of a VC as the party `local` sees it from its validated partners.
    pub fn new(local: Member, partners: &[Partner]) -> Self {
        let mut members = Vec::with_capacity(partners.len() + 1);
        members.push(local);
        members.extend(partners.iter().map(|p| Member {
            name: p.name.clone(),
            endpoint: p.endpoint.clone(),
        }));
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Self { members }
    }

    /// Members in player order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Number of players.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true for a membership built by [`Membership::new`].
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The player number of `name`, if it is a member.
    pub fn player_id(&self, name: &PartyName) -> Option<u32> {
        self.members
            .binary_search_by(|m| m.name.cmp(name))
            .ok()
            .and_then(|i| u32::try_from(i).ok())
    }
}

/// The player number `name` gets among `others` plus itself, without building
/// a [`Membership`]: the number of names that sort before it.
pub fn player_id_among<'a>(name: &PartyName, others: impl Iterator<Item = &'a PartyName>) -> u32 {
    let before = others.filter(|other| *other < name).count();
    u32::try_from(before).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn member(name: &str) -> Member {
        Member {
            name: name.parse().unwrap(),
            endpoint: Endpoint::new(&format!("https://{name}.example")).unwrap(),
        }
    }

    proptest! {
        /// Player numbers are a bijection onto 0..N-1 and every party, building
        /// the membership from its own point of view, computes the same numbers.
        #[test]
        fn player_numbers_are_a_shared_bijection(
            names in proptest::collection::btree_set("[a-z][a-z0-9-]{0,6}[a-z0-9]", 2..12)
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let views: Vec<Membership> = names.iter().map(|local| {
                let partners: Vec<Partner> = names.iter().filter(|n| *n != local).map(|n| {
                    let m = member(n);
                    Partner { name: m.name, endpoint: m.endpoint }
                }).collect();
                Membership::new(member(local), &partners)
            }).collect();
            for view in &views {
                prop_assert_eq!(view, &views[0]);
                let ids: BTreeSet<u32> = names.iter()
                    .map(|n| view.player_id(&n.parse().unwrap()).unwrap())
                    .collect();
                prop_assert_eq!(ids, (0..names.len() as u32).collect::<BTreeSet<_>>());
            }
            for (i, local) in names.iter().enumerate() {
                let local: PartyName = local.parse().unwrap();
                let others: Vec<PartyName> = names.iter().filter(|n| **n != local.as_str())
                    .map(|n| n.parse().unwrap()).collect();
                prop_assert_eq!(player_id_among(&local, others.iter()), views[i].player_id(&local).unwrap());
            }
        }
    }
}

//! The sequence numbers of the partner-info documents this party publishes
//! about a VC: they never go back, even when the stored document is lost.
//!
//! Partners remember the highest sequence number they accepted from us and
//! refuse a lower one as a rollback (see the partner protocol in the design).
//! The stored document alone cannot carry that promise: if it is deleted,
//! numbering would restart at 1 and every partner would refuse us for good.
//! So the VC status also carries a **reservation** ([`Sequencing::reserved`]):
//! no document was ever published with a higher number. Publishing a number
//! above the reservation first raises it in a write of its own
//! ([`Sequencing::next`] says when); every status write the VC makes anyway
//! raises it to [`RESERVE_AHEAD`] beyond the last number published
//! ([`Sequencing::carried`]), so in practice the reservation is always ahead
//! and publishing costs no extra write. Number 1 needs no reservation: a
//! partner accepts an equal number, and nothing lower exists.
//!
//! After a lost document the next number is the reservation plus one: above
//! everything published, whatever the partners accepted.

/// How far beyond the last published number a status write reserves.
pub const RESERVE_AHEAD: u64 = 1000;

/// What is known of a VC's sequence numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequencing {
    /// The number of the stored document, if one is stored.
    pub stored: Option<u64>,
    /// The reservation in the VC status, if any.
    pub reserved: Option<u64>,
}

/// The number the next document gets, and the reservation to write before
/// publishing it, if the current one does not cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// The next document's sequence number.
    pub sequence: u64,
    /// Write this reservation first (before the document).
    pub reserve: Option<u64>,
}

impl Sequencing {
    /// The next number: one above the stored document, or, with none
    /// stored, one above the reservation (everything ever published).
    pub fn next(&self) -> Next {
        let last = self.stored.or(self.reserved).unwrap_or(0);
        let sequence = last.saturating_add(1);
        let covered = self.reserved.unwrap_or(1).max(1);
        Next {
            sequence,
            reserve: (sequence > covered).then(|| sequence.saturating_add(RESERVE_AHEAD)),
        }
    }

    /// The reservation a status write carries: never lower than the current
    /// one, and [`RESERVE_AHEAD`] beyond the last number published.
    pub fn carried(&self) -> Option<u64> {
        let ahead = self.stored.map(|s| s.saturating_add(RESERVE_AHEAD));
        self.reserved.max(ahead)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn numbering_starts_at_one_without_a_reservation() {
        let next = Sequencing::default().next();
        assert_eq!(
            next,
            Next {
                sequence: 1,
                reserve: None
            }
        );
    }

    #[test]
    fn a_lost_document_continues_above_the_reservation() {
        let after_loss = Sequencing {
            stored: None,
            reserved: Some(1005),
        };
        assert_eq!(after_loss.next().sequence, 1006);
        assert_eq!(after_loss.next().reserve, Some(2006));
        let kept = Sequencing {
            stored: Some(5),
            reserved: Some(1005),
        };
        assert_eq!(
            kept.next(),
            Next {
                sequence: 6,
                reserve: None
            }
        );
        assert_eq!(kept.carried(), Some(1005));
    }

    #[test]
    fn status_writes_keep_the_reservation_ahead_so_publishing_needs_none() {
        let mut world = Sequencing::default();
        for published in 1..=3 * RESERVE_AHEAD {
            let next = world.next();
            assert_eq!(
                next,
                Next {
                    sequence: published,
                    reserve: None
                }
            );
            world.stored = Some(next.sequence);
            world.reserved = world.carried();
        }
    }

    /// One event in the life of a VC's document.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// A reconcile publishes a new document (the reservation write, if
        /// needed, or the document write may fail).
        Publish { reservation_fails: bool },
        /// A status write the VC makes anyway (may fail).
        StatusWrite { fails: bool },
        /// Someone deletes the document's ConfigMap.
        LoseDocument,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => any::<bool>().prop_map(|f| Step::Publish { reservation_fails: f }),
            3 => any::<bool>().prop_map(|fails| Step::StatusWrite { fails }),
            1 => Just(Step::LoseDocument),
        ]
    }

    proptest! {
        /// Whatever happens, a partner never sees a number lower than one
        /// it saw, and a changed document always gets a higher number
        /// than the stored one.
        #[test]
        fn sequence_numbers_never_go_back(steps in prop::collection::vec(step(), 0..60)) {
            let mut world = Sequencing::default();
            let mut highest_published = 0_u64;
            for step in steps {
                match step {
                    Step::Publish { reservation_fails } => {
                        let next = world.next();
                        if let Some(reserve) = next.reserve {
                            if reservation_fails {
                                continue;
                            }
                            world.reserved = Some(reserve);
                        }
                        prop_assert!(
                            next.sequence >= highest_published,
                            "{} after {highest_published}", next.sequence
                        );
                        prop_assert!(world.stored.is_none_or(|s| next.sequence > s));
                        prop_assert!(next.sequence <= world.reserved.unwrap_or(1).max(1));
                        world.stored = Some(next.sequence);
                        highest_published = highest_published.max(next.sequence);
                    }
                    Step::StatusWrite { fails } => {
                        if !fails {
                            world.reserved = world.carried();
                        }
                    }
                    Step::LoseDocument => world.stored = None,
                }
            }
        }

        #[test]
        fn status_writes_never_lower_the_reservation(stored in proptest::option::of(0..u64::MAX / 2), reserved in proptest::option::of(0..u64::MAX / 2)) {
            let carried = Sequencing { stored, reserved }.carried();
            prop_assert!(carried >= reserved);
            prop_assert!(stored.is_none_or(|s| carried >= Some(s)));
        }
    }
}

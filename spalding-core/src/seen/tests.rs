//! The rollback bookkeeping against a model of a partner, this process, its
//! restarts and failed status writes.

use proptest::prelude::*;

use super::*;

/// One event.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The partner publishes its next document, saying one of a few things.
    Publish { content: u8, admits_us: bool },
    /// This process fetches the newest document; the status write it plans
    /// may fail, and one may be made anyway (another field changed).
    Fetch {
        write_fails: bool,
        write_anyway: bool,
    },
    /// This process restarts: what it saw is lost, the status stays.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3_u8, any::<bool>()).prop_map(|(content, admits_us)| Step::Publish { content, admits_us }),
        4 => (prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(write_fails, write_anyway)| Step::Fetch { write_fails, write_anyway }),
        1 => Just(Step::Restart),
    ]
}

fn said(content: u8, admits_us: bool) -> Said {
    Said {
        content: ViewDigest::from(content),
        admits_us,
    }
}

proptest! {
    /// Whatever was seen, skipped, restarted or failed: every document from
    /// the recorded one up to the newest one this party acted on (its status
    /// written, or left as it was) says what the status records. A rollback
    /// check that knows only the recorded number (after a restart) lets
    /// through exactly those and newer ones, so a replay cannot bring back a
    /// document saying anything else than the status.
    #[test]
    fn a_replay_after_a_restart_says_what_is_recorded(steps in prop::collection::vec(step(), 0..80)) {
        let vc = VcKey { namespace: "default".to_owned(), name: "demo".to_owned() };
        let partner: PartyName = "alpha".parse().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        // Every document the partner published; number n at index n - 1.
        let mut published = vec![said(0, false)];
        let mut seen = SeenDocuments::default();
        let mut recorded: Option<(u64, Said)> = None;
        // The newest document after whose fetch the status was up to date.
        let mut vouched = 0_u64;
        for step in steps {
            match step {
                Step::Publish { content, admits_us } => published.push(said(content, admits_us)),
                Step::Restart => seen = SeenDocuments::default(),
                Step::Fetch { write_fails, write_anyway } => {
                    let sequence = published.len() as u64;
                    let Some(&now) = published.last() else { continue };
                    let floor = recorded.map(|(s, _)| s.max(seen.highest(&vc, &partner).unwrap_or(0)));
                    prop_assert!(floor.is_none_or(|f| sequence >= f), "the newest is never refused");
                    let run = seen.saw(&vc, &partner, sequence, now);
                    let settled = recorded.is_some_and(|(s, r)| run.covers(s, r));
                    if settled && !write_anyway {
                        vouched = sequence;
                    } else if !write_fails {
                        recorded = Some((sequence, now));
                        vouched = sequence;
                    }
                }
            }
            if let Some((s, r)) = recorded {
                prop_assert!(vouched >= s);
                for number in s..=vouched {
                    let index = usize::try_from(number - 1).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(published.get(index).copied(), Some(r), "document {} after recording {}", number, s);
                }
            }
        }
    }
}

#[test]
fn a_run_continues_only_without_gaps_and_with_the_same_content() {
    let a = said(1, true);
    let run = Run::extend(None, 5, a);
    assert_eq!(run.since, 5);
    let run = Run::extend(Some(run), 6, a);
    assert_eq!((run.since, run.last), (5, 6));
    assert!(run.covers(4, a), "recorded 4, seen 5 and 6 saying the same");
    assert!(!run.covers(3, a), "document 4 was never seen");
    assert!(!run.covers(5, said(2, true)), "another content");
    assert!(!run.covers(5, said(1, false)), "another line about us");
    let gap = Run::extend(Some(run), 8, a);
    assert_eq!((gap.since, gap.last), (8, 8));
    let changed = Run::extend(Some(run), 7, said(2, true));
    assert_eq!((changed.since, changed.last), (7, 7));
    let back = Run::extend(Some(run), 5, a);
    assert_eq!((back.since, back.last), (5, 5), "numbering restarted");
}

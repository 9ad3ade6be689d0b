//! What this process saw of each partner's documents: for every partner of
//! every VC, the **run** of documents it fetched in a row — consecutive
//! sequence numbers, one content digest, one line about us — ending at the
//! newest one. Lets the barrier leave a partner's stored sequence number as
//! it is while the partner republishes documents that say nothing new to us,
//! without weakening the rollback check.
//!
//! The rollback check refuses a document numbered below the one recorded in
//! the partner's status (`status.sequence`). Recording every new number costs
//! a status write per republish, and partners republish whenever their view
//! of the group gains a fingerprint or an admission: O(N) times each, so
//! O(N²) writes per party. Instead a number is recorded only when something
//! we act on changes, or when the documents between the recorded one and the
//! newest were not all seen here. While the process runs the check uses the
//! newest number seen ([`SeenDocuments::highest`]), so nothing changes for
//! it. After a restart only the recorded number is known; the documents a
//! replay could then bring back are those numbered from the recorded one up to
//! the newest seen before the restart — and this process saw each of them,
//! with the recorded content digest and line about us
//! ([`crate::document::VerifiedDocument::content_digest`] covers everything
//! the barrier acts on). A replay after a restart therefore yields the
//! verdict the recorded status already holds; only the partner's state and
//! the names in a "waiting for" message may be older than what was seen.
//! Documents never seen (a gap in the run) could say anything, so a gap is
//! recorded as before.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::certificate::Fingerprint;
use crate::document::{VerifiedDocument, ViewDigest};
use crate::name::PartyName;
use crate::ports::VcKey;

/// What a document says that the rollback bookkeeping compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Said {
    /// Its content digest.
    pub content: ViewDigest,
    /// Whether it lists us as admitted with our current certificate.
    pub admits_us: bool,
}

impl Said {
    /// What `document` says to the party `us` holding `certificate`.
    pub fn of(document: &VerifiedDocument, us: &PartyName, certificate: &Fingerprint) -> Self {
        Self {
            content: document.content_digest,
            admits_us: document.admits(us, certificate, None),
        }
    }
}

/// Documents of one partner seen in a row, all saying the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The first sequence number of the run.
    pub since: u64,
    /// The newest sequence number seen.
    pub last: u64,
    /// What every document of the run says.
    pub said: Said,
}

impl Run {
    /// The run after seeing the document numbered `sequence` that says
    /// `said`: the same run when it follows on (the newest again or the next
    /// number, the same content), else a new run starting at `sequence` —
    /// also when the number went back, which the rollback check lets through
    /// only when nothing is recorded (a VC deleted and created again).
    pub fn extend(previous: Option<Self>, sequence: u64, said: Said) -> Self {
        match previous {
            Some(run)
                if run.said == said
                    && sequence >= run.last
                    && sequence <= run.last.saturating_add(1) =>
            {
                Self {
                    since: run.since,
                    last: sequence,
                    said,
                }
            }
            _ => Self {
                since: sequence,
                last: sequence,
                said,
            },
        }
    }

    /// Whether a status recording `sequence` with `said` may stay as it is
    /// while this run is the newest: every document numbered from it to the
    /// newest was seen here and says the same.
    pub fn covers(&self, sequence: u64, said: Said) -> bool {
        said == self.said && sequence <= self.last && sequence.saturating_add(1) >= self.since
    }
}

/// The runs of one process, per VC and partner. Shared by the clones of a
/// [`crate::Reconciler`]; lost on restart, by design (see the module docs).
#[derive(Debug, Default)]
pub struct SeenDocuments {
    runs: Mutex<HashMap<(VcKey, PartyName), Run>>,
}

impl SeenDocuments {
    /// The newest sequence number seen from `partner` of `vc`.
    pub fn highest(&self, vc: &VcKey, partner: &PartyName) -> Option<u64> {
        self.lock()
            .get(&(vc.clone(), partner.clone()))
            .map(|run| run.last)
    }

    /// Records a fetched document and returns the run it ends.
    pub fn saw(&self, vc: &VcKey, partner: &PartyName, sequence: u64, said: Said) -> Run {
        let mut runs = self.lock();
        let key = (vc.clone(), partner.clone());
        let run = Run::extend(runs.get(&key).copied(), sequence, said);
        runs.insert(key, run);
        run
    }

    /// Forgets every partner of `vc` not in `keep` (the VC is gone when
    /// `keep` is empty).
    pub fn retain(&self, vc: &VcKey, keep: &[&PartyName]) {
        self.lock().retain(|(v, p), _| v != vc || keep.contains(&p));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(VcKey, PartyName), Run>> {
        // A panic elsewhere cannot leave a run half-written: every update is
        // one insert of a complete value.
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;

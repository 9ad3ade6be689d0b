//! What [`super::KubeCluster`] has already parsed of the objects it lists on
//! every reconcile: the partner records and statuses of VirtualCloudPartners
//! (whose parameters are validated, a primality test) and the partners'
//! certificates (PEM and X.509 parsing). Each parse is remembered under the
//! object's name and resourceVersion; the API server gives every change a
//! new resourceVersion, so a changed object is parsed again and an unchanged
//! one never is. Only objects in the latest listing are remembered.

use std::collections::{HashMap, HashSet};

use spalding_core::certificate::Certificate;
use spalding_core::partner::{PartnerRecord, PartnerStatus};

/// Parses remembered by object name and resourceVersion.
#[derive(Debug)]
pub(super) struct Memo<T> {
    entries: HashMap<String, (String, T)>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<T: Clone> Memo<T> {
    /// What was parsed of `name` at `version`, else `parse()` (remembered
    /// when it succeeds and the object has a resourceVersion).
    pub(super) fn get_or_parse<E>(
        &mut self,
        name: &str,
        version: Option<&str>,
        parse: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(version) = version
            && let Some((seen, parsed)) = self.entries.get(name)
            && seen == version
        {
            return Ok(parsed.clone());
        }
        let parsed = parse()?;
        if let Some(version) = version {
            self.entries
                .insert(name.to_owned(), (version.to_owned(), parsed.clone()));
        }
        Ok(parsed)
    }

    /// Forgets every object not named in `listed`.
    pub(super) fn keep_only(&mut self, listed: &HashSet<&str>) {
        self.entries
            .retain(|name, _| listed.contains(name.as_str()));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A VirtualCloudPartner as the port returns it.
pub(super) type ParsedPartner = (PartnerRecord, Option<PartnerStatus>);

/// What was parsed of one VC's partners.
#[derive(Debug, Default)]
pub(super) struct PartnerReads {
    /// VirtualCloudPartners by object name.
    pub partners: Memo<ParsedPartner>,
    /// Certificate ConfigMaps by name: the certificate, or `None` when the
    /// stored PEM does not parse.
    pub certificates: Memo<Option<Certificate>>,
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[test]
    fn parses_again_only_when_the_version_changes() {
        let mut memo = Memo::<u32>::default();
        let parses = std::cell::Cell::new(0);
        let get = |memo: &mut Memo<u32>, name: &str, version: Option<&str>, value: u32| {
            memo.get_or_parse(name, version, || {
                parses.set(parses.get() + 1);
                Ok::<_, Infallible>(value)
            })
        };
        assert_eq!(get(&mut memo, "a", Some("1"), 10), Ok(10));
        assert_eq!(get(&mut memo, "a", Some("1"), 11), Ok(10));
        assert_eq!(get(&mut memo, "a", Some("2"), 12), Ok(12));
        assert_eq!(get(&mut memo, "a", Some("2"), 13), Ok(12));
        assert_eq!(get(&mut memo, "a", None, 14), Ok(14));
        assert_eq!(get(&mut memo, "b", Some("2"), 15), Ok(15));
        assert_eq!(parses.get(), 4);
        memo.keep_only(&HashSet::from(["b"]));
        assert_eq!(memo.len(), 1);
        assert_eq!(get(&mut memo, "a", Some("2"), 16), Ok(16));
    }

    #[test]
    fn failures_are_not_remembered() {
        let mut memo = Memo::<u32>::default();
        assert_eq!(memo.get_or_parse("a", Some("1"), || Err("bad")), Err("bad"));
        assert_eq!(
            memo.get_or_parse("a", Some("1"), || Ok::<_, &str>(1)),
            Ok(1)
        );
    }
}

//! Observation lists in name order, without copying them when they already
//! are: [`ByName`] checks the order in one pass and only gathers and sorts
//! references when it must, so `decide` can walk partners, observations and
//! admissions together in a single linear pass.

use crate::name::PartyName;

/// A list in name order (stable for equal names): the list itself when it
/// was sorted already, else references to its items, sorted.
pub(crate) enum ByName<'a, T> {
    /// The items were in order as given.
    InOrder(&'a [T]),
    /// References to the items, sorted.
    Sorted(Vec<&'a T>),
}

impl<'a, T> ByName<'a, T> {
    /// Orders `items` by `name`.
    pub fn new(items: &'a [T], name: impl Fn(&T) -> &PartyName) -> Self {
        if items.is_sorted_by(|a, b| name(a) <= name(b)) {
            return Self::InOrder(items);
        }
        let mut sorted: Vec<&T> = items.iter().collect();
        sorted.sort_by(|a, b| name(a).cmp(name(b)));
        Self::Sorted(sorted)
    }

    /// The item at `index`, in name order.
    pub fn get(&self, index: usize) -> Option<&'a T> {
        match self {
            Self::InOrder(items) => items.get(index),
            Self::Sorted(sorted) => sorted.get(index).copied(),
        }
    }

    /// Items `from..to`, in name order.
    pub fn run(&self, from: usize, to: usize) -> Run<'_, T> {
        match self {
            Self::InOrder(items) => Run::InOrder(items.get(from..to).unwrap_or_default()),
            Self::Sorted(sorted) => Run::Sorted(sorted.get(from..to).unwrap_or_default()),
        }
    }

    /// Items from `from` on, in name order.
    pub fn rest(&self, from: usize) -> Run<'_, T> {
        match self {
            Self::InOrder(items) => Run::InOrder(items.get(from..).unwrap_or_default()),
            Self::Sorted(sorted) => Run::Sorted(sorted.get(from..).unwrap_or_default()),
        }
    }
}

/// A run of consecutive items of a [`ByName`].
#[derive(Debug)]
pub(crate) enum Run<'a, T> {
    /// A part of the list as given.
    InOrder(&'a [T]),
    /// A part of the sorted references.
    Sorted(&'a [&'a T]),
}

impl<T> Clone for Run<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Run<'_, T> {}

impl<'a, T> Run<'a, T> {
    /// The items, in order.
    pub fn iter(self) -> impl Iterator<Item = &'a T> + Clone {
        let (in_order, sorted): (&[T], &[&T]) = match self {
            Self::InOrder(items) => (items, &[]),
            Self::Sorted(sorted) => (&[], sorted),
        };
        in_order.iter().chain(sorted.iter().copied())
    }

    /// Whether the run is empty.
    pub fn is_empty(self) -> bool {
        match self {
            Self::InOrder(items) => items.is_empty(),
            Self::Sorted(sorted) => sorted.is_empty(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the input order, the items come out in stable name order,
        /// and runs are the slices of that order.
        #[test]
        fn yields_stable_name_order(
            items in proptest::collection::vec(("[a-d]", any::<u8>()), 0..12),
            from in 0usize..14,
            to in 0usize..14,
        ) {
            let items: Vec<(PartyName, u8)> = items
                .into_iter()
                .map(|(n, v)| (n.parse().unwrap(), v))
                .collect();
            let by_name = ByName::new(&items, |i| &i.0);
            let mut expected: Vec<&(PartyName, u8)> = items.iter().collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let got: Vec<_> = (0..items.len()).map(|i| by_name.get(i).unwrap()).collect();
            prop_assert_eq!(&got, &expected);
            prop_assert!(by_name.get(items.len()).is_none());
            let run: Vec<_> = by_name.run(from, to).iter().collect();
            prop_assert_eq!(run, expected.get(from..to).unwrap_or_default().to_vec());
            let rest: Vec<_> = by_name.rest(from).iter().collect();
            prop_assert_eq!(rest, expected.get(from..).unwrap_or_default().to_vec());
            prop_assert_eq!(by_name.run(from, to).is_empty(), expected.get(from..to).unwrap_or_default().is_empty());
        }
    }
}

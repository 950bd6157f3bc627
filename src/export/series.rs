//! The series operations are recorded into, remembered by their attribute values: an
//! operation whose series was seen before costs a hash and a comparison, instead of a set of
//! owned labels made, handed over and freed every time.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::names::Values;

/// Series remembered at most. The analysis's key cap bounds the routes, not the statuses
/// and error types; past this many, the memory starts over.
const MAX_SERIES: usize = 2048;

/// The series whose values hash alike: each one's values, owned, and what it needs.
type Entries<T> = Vec<(Box<[Option<Box<str>>]>, T)>;

/// What each series needs to be recorded into (its `metrics` key, its OpenTelemetry
/// attributes), by the series's attribute values.
#[derive(Debug)]
pub(crate) struct Series<T> {
    by_hash: HashMap<u64, Entries<T>, Fx>,
    len: usize,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Series { by_hash: HashMap::with_hasher(Fx::default()), len: 0 }
    }
}

/// FxHash (rustc's hasher) for the values and their hashes: a few instructions a word where
/// SipHash takes a thousand for a series's values. It does not resist chosen collisions;
/// the values are the application's own method, route template, host and outcome, and at
/// most [`MAX_SERIES`] are held.
type Fx = rustc_hash::FxBuildHasher;

impl<T> Series<T> {
    /// The series of `values`, made by `make` the first time they are seen.
    pub(crate) fn get(&mut self, values: &Values<'_>, make: impl FnOnce() -> T) -> &T {
        let hash = Fx::default().hash_one(values.as_slice());
        let known = |entries: &Entries<T>| {
            entries
                .iter()
                .position(|(known, _)| known.iter().map(Option::as_deref).eq(values.iter().copied()))
        };
        if self.len >= MAX_SERIES && self.by_hash.get(&hash).and_then(known).is_none() {
            self.by_hash.clear();
            self.len = 0;
        }
        let entries = self.by_hash.entry(hash).or_default();
        let at = match known(entries) {
            Some(at) => at,
            None => {
                entries.push((values.iter().map(|v| v.map(Box::from)).collect(), make()));
                self.len += 1;
                entries.len() - 1
            }
        };
        &entries[at].1
    }

    /// How many series are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_made_once_and_found_again() {
        let mut series = Series::default();
        let mut made = 0;
        let get = |series: &mut Series<usize>, made: &mut usize, values: [Option<&str>; 7]| {
            *series.get(&Values::from_slice(&values), || {
                *made += 1;
                *made
            })
        };
        let a = [None, Some("GET"), Some("/a/{id}"), Some("h"), Some("443"), Some("200"), None];
        let b = [None, Some("GET"), Some("/a/{id}"), Some("h"), Some("443"), Some("500"), Some("500")];
        assert_eq!(get(&mut series, &mut made, a), 1);
        assert_eq!(get(&mut series, &mut made, b), 2);
        assert_eq!(get(&mut series, &mut made, a), 1);
        // A value moved to another attribute is another series.
        let c = [Some("GET"), None, Some("/a/{id}"), Some("h"), Some("443"), Some("200"), None];
        assert_eq!(get(&mut series, &mut made, c), 3);
        assert_eq!(series.len(), 3);
    }

    #[test]
    fn the_memory_starts_over_past_its_bound() {
        let mut series = Series::default();
        let routes: Vec<String> = (0..=MAX_SERIES).map(|i| format!("/r/{i}")).collect();
        for route in &routes {
            series
                .get(&Values::from_slice(&[None, None, Some(route.as_str()), None, None, None, None]), || ());
        }
        assert_eq!(series.len(), 1, "the last one, in a fresh memory");
    }
}

//! An item as ingest builds it: its attributes in a list, named by static
//! strings. The SDK's item type is a `HashMap<String, AttributeValue>`
//! under std's SipHash: built in `prepare`, every attribute of every event
//! paid a hash and a name allocation there, and the write paid them again
//! cloning the map for its request. A list costs neither; the SDK's map is
//! made once, for the request ([`Attrs::to_item`]).

use std::ops::Index;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, ItemExt};

/// Attributes in the order they were put. A name put twice holds its last
/// value, as a map would: [`Attrs::get`] reads from the end and
/// [`Attrs::to_item`] inserts in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(Vec<(&'static str, AttributeValue)>);

impl Attrs {
    pub fn with_capacity(n: usize) -> Self {
        Attrs(Vec::with_capacity(n))
    }

    /// Adds an attribute the item does not hold yet (an item being built
    /// attribute by attribute); one it holds is replaced by [`Attrs::insert`].
    pub fn push(&mut self, name: &'static str, v: AttributeValue) {
        debug_assert!(!self.contains_key(name), "attribute `{name}` put twice");
        self.0.push((name, v));
    }

    /// Sets an attribute, replacing the one of that name: the old value.
    pub fn insert(&mut self, name: &'static str, v: AttributeValue) -> Option<AttributeValue> {
        match self.0.iter_mut().rev().find(|(k, _)| *k == name) {
            Some((_, old)) => Some(std::mem::replace(old, v)),
            None => {
                self.0.push((name, v));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<AttributeValue> {
        let mut removed = None;
        self.0.retain_mut(|(k, v)| {
            if *k == name {
                removed = Some(std::mem::replace(v, AttributeValue::Null(true)));
                false
            } else {
                true
            }
        });
        removed
    }

    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &AttributeValue)> {
        self.into_iter()
    }

    /// The SDK's item of these attributes, for a request.
    pub fn to_item(&self) -> Item {
        self.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect()
    }

    pub fn into_item(self) -> Item {
        self.0.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

impl Index<&str> for Attrs {
    type Output = AttributeValue;
    fn index(&self, name: &str) -> &AttributeValue {
        self.get(name).unwrap_or_else(|| panic!("no attribute `{name}`"))
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'static str, &'a AttributeValue);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (&'static str, AttributeValue)>, fn(&'a (&'static str, AttributeValue)) -> Self::Item>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (*k, v))
    }
}

impl ItemExt for Attrs {
    fn attr(&self, name: &str) -> Option<&AttributeValue> {
        self.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::s;
    use proptest::prelude::*;

    const NAMES: [&str; 6] = ["pk", "sk", "w", "kind", "expires_at", "metadata"];

    proptest! {
        /// Any sequence of sets and removes leaves the attributes, and
        /// the SDK item made of them, that a map given the same sequence
        /// holds.
        #[test]
        fn attributes_read_as_a_map_given_the_same_changes_would(
            ops in proptest::collection::vec((0usize..NAMES.len(), proptest::option::of("[a-z]{0,4}")), 0..40)
        ) {
            let (mut attrs, mut map) = (Attrs::default(), Item::new());
            for (i, value) in ops {
                let name = NAMES[i];
                match value {
                    Some(v) => prop_assert_eq!(attrs.insert(name, s(v.clone())), map.insert(name.to_owned(), s(v))),
                    None => prop_assert_eq!(attrs.remove(name), map.remove(name)),
                }
            }
            prop_assert_eq!(attrs.len(), map.len());
            for name in NAMES {
                prop_assert_eq!(attrs.get(name), map.get(name));
            }
            prop_assert_eq!(attrs.to_item(), map.clone());
            prop_assert_eq!(attrs.into_item(), map);
        }
    }
}

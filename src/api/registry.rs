//! [`Registry`]: the reporters a process-wide handler (the panic hook, the signal handler)
//! acts for. It holds them weakly, so that registering never keeps a reporter alive, and
//! forgets the ones that are gone whenever another one registers.

use std::sync::{Arc, Mutex, PoisonError, Weak};

/// A process-wide list of reporters, held weakly.
#[derive(Debug)]
pub(crate) struct Registry<T> {
    entries: Mutex<Vec<Weak<T>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Self {
        Registry { entries: Mutex::new(Vec::new()) }
    }

    /// Adds `item` unless it is there already; returns whether this call added it. Entries
    /// whose item is gone are dropped on the way, so the list never outgrows the reporters
    /// alive at once.
    pub(crate) fn add(&self, item: &Arc<T>) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|e| e.strong_count() > 0);
        if entries.iter().any(|e| std::ptr::eq(e.as_ptr(), Arc::as_ptr(item))) {
            return false;
        }
        entries.push(Arc::downgrade(item));
        true
    }

    /// The registered items still alive, in the order they registered. The lock is not held
    /// once this returns: callers may block on what they got.
    pub(crate) fn live(&self) -> Vec<Arc<T>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().filter_map(Weak::upgrade).collect()
    }

    /// How many entries the list holds, alive or not.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registering_keeps_nothing_alive_and_the_list_does_not_grow_with_dead_entries() {
        let registry = Registry::new();
        let mut last = Weak::new();
        for n in 0..200 {
            let item = Arc::new(n);
            assert!(registry.add(&item));
            assert!(!registry.add(&item), "once per item");
            assert_eq!(registry.live().len(), 1);
            last = Arc::downgrade(&item);
        }
        assert!(last.upgrade().is_none(), "the registry held the last item alive");
        assert!(registry.live().is_empty());
        assert_eq!(registry.len(), 1, "dead entries are dropped as others register");
        let (a, b) = (Arc::new(1), Arc::new(2));
        registry.add(&a);
        registry.add(&b);
        assert_eq!(registry.live(), vec![a, b]);
        assert_eq!(registry.len(), 2);
    }
}

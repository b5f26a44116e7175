//! [`MemoryHistory`]: a ring of messages per room, in this process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{
    new_epoch, now_ms, Entry, History, HistoryError, HistoryFuture, Position, Retention, Sizes,
    Slice,
};
use crate::broker::Topic;
use crate::message::Message;
use crate::util::lock;

/// Room history in memory: per room, the newest messages within the [`Retention`], and an
/// epoch drawn when the room's history starts (so a restarted process has new epochs, and
/// no client takes its old offsets for new ones). The default store, with no dependency.
///
/// A room's ring is freed when its last message ages out or when the room keeps no history
/// ([`Retention::none`]); its offset counter stays (a few dozen bytes per room ever
/// published to).
#[derive(Debug, Default)]
pub struct MemoryHistory {
    rooms: Mutex<HashMap<Topic, Ring>>,
}

#[derive(Debug)]
struct Ring {
    epoch: Arc<str>,
    top: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl MemoryHistory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Ring {
    fn trim(&mut self, retention: &Retention, now: u64) {
        let oldest = retention.oldest_ms(now);
        while let Some(front) = self.entries.front() {
            let over = self.entries.len() > retention.count()
                || self.bytes > retention.bytes()
                || oldest.is_some_and(|o| front.time_ms < o);
            if !over {
                break;
            }
            self.bytes -= front.message.len();
            self.entries.pop_front();
        }
        if self.entries.is_empty() {
            self.entries = VecDeque::new();
        }
    }
}

impl History for MemoryHistory {
    fn append<'a>(
        &'a self,
        topic: &'a Topic,
        message: &'a Message,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Position, HistoryError>> {
        let now = now_ms();
        let mut rooms = lock(&self.rooms);
        let ring = rooms.entry(topic.clone()).or_insert_with(|| Ring {
            epoch: new_epoch().into(),
            top: 0,
            entries: VecDeque::new(),
            bytes: 0,
        });
        ring.top += 1;
        if retention.count() > 0 && message.len() <= retention.bytes() {
            ring.bytes += message.len();
            ring.entries.push_back(Entry {
                offset: ring.top,
                message: message.clone(),
                time_ms: now,
            });
        }
        ring.trim(retention, now);
        let position = Position::new(ring.top, ring.epoch.clone());
        Box::pin(std::future::ready(Ok(position)))
    }

    fn read<'a>(
        &'a self,
        topic: &'a Topic,
        after: u64,
        limit: usize,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Slice, HistoryError>> {
        let mut rooms = lock(&self.rooms);
        let ring = rooms.entry(topic.clone()).or_insert_with(|| Ring {
            epoch: new_epoch().into(),
            top: 0,
            entries: VecDeque::new(),
            bytes: 0,
        });
        ring.trim(retention, now_ms());
        let first = ring.entries.front().map_or(ring.top + 1, |e| e.offset);
        // Offsets are consecutive in the ring: the entry after `after` is at a known index.
        let start = usize::try_from(after.saturating_add(1).saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(ring.entries.len());
        let entries = ring.entries.range(start..).take(limit).cloned().collect();
        let slice = Slice {
            epoch: ring.epoch.clone(),
            top: ring.top,
            first,
            entries,
        };
        Box::pin(std::future::ready(Ok(slice)))
    }

    fn sizes(&self) -> Sizes {
        let rooms = lock(&self.rooms);
        let mut sizes = Sizes::default();
        for ring in rooms.values().filter(|r| !r.entries.is_empty()) {
            sizes.rooms += 1;
            sizes.entries += ring.entries.len() as u64;
            sizes.bytes += ring.bytes as u64;
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn block<T>(f: HistoryFuture<'_, T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn offsets_count_up_and_the_ring_keeps_the_newest() {
        let store = MemoryHistory::new();
        let topic = Topic::new("/e", "r");
        let keep3 = Retention::new().max_count(3);
        for i in 1..=5u64 {
            let p = block(store.append(&topic, &Message::text(format!("m{i}")), &keep3)).unwrap();
            assert_eq!(p.offset, i);
        }
        let s = block(store.read(&topic, 0, 10, &keep3)).unwrap();
        assert_eq!((s.top, s.first), (5, 3));
        let offsets: Vec<u64> = s.entries.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, [3, 4, 5]);
        let s = block(store.read(&topic, 3, 1, &keep3)).unwrap();
        assert_eq!(s.entries[0].message, Message::text("m4"));
        assert!(block(store.read(&topic, 9, 10, &keep3))
            .unwrap()
            .entries
            .is_empty());
        assert_eq!(store.sizes().entries, 3);
    }

    #[test]
    fn bytes_and_age_bound_the_ring() {
        let store = MemoryHistory::new();
        let topic = Topic::new("/e", "r");
        let small = Retention::new().max_bytes(10);
        for _ in 0..4 {
            let _ = block(store.append(&topic, &Message::text("abcd"), &small)).unwrap();
        }
        assert_eq!(
            block(store.read(&topic, 0, 10, &small))
                .unwrap()
                .entries
                .len(),
            2
        );
        let aged = Retention::new().max_age(Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        let s = block(store.read(&topic, 0, 10, &aged)).unwrap();
        assert!(s.entries.is_empty());
        assert_eq!((s.top, s.first), (4, 5));
        // A new store is a new epoch.
        let other = MemoryHistory::new();
        let e2 = block(other.read(&topic, 0, 1, &aged)).unwrap().epoch;
        assert_ne!(s.epoch, e2);
    }
}

//! The shared buffer: each event stored once, partial matches as chains of
//! nodes pointing back to their previous node.
//!
//! Branches (followedByAny, loops) share their common prefix, so forking a
//! partial match copies no event. Flink keys its nodes by (event, step) and
//! tells branches apart with Dewey version numbers on the edges; here each
//! take makes its own node, so a chain is one branch's history exactly and
//! needs no version stamps. Nodes and events are reference counted and freed
//! when the last partial match through them goes.

use std::sync::Arc;

use crate::matched::Matched;
use crate::output::Spare;
use crate::skip::EventKey;
use crate::slab::{Slab, NONE};

#[derive(Clone, Debug)]
pub(crate) struct EventSlot<E> {
    pub event: E,
    pub key: EventKey,
    /// Nodes that hold the event.
    pub refs: u32,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub event: u32,
    pub step: u16,
    /// The previous node of the chain, or `NONE`.
    pub prev: u32,
    /// Partial matches and later nodes that point here.
    pub refs: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct SharedBuffer<E> {
    pub events: Slab<EventSlot<E>>,
    pub nodes: Slab<Node>,
}

impl<E> Default for SharedBuffer<E> {
    fn default() -> Self {
        SharedBuffer {
            events: Slab::default(),
            nodes: Slab::default(),
        }
    }
}

impl<E> SharedBuffer<E> {
    pub fn add_event(&mut self, event: E, key: EventKey) -> u32 {
        self.events.insert(EventSlot {
            event,
            key,
            refs: 0,
        })
    }

    /// Frees an event no node took.
    pub fn drop_if_unused(&mut self, event: u32) {
        if self.events.get(event).is_some_and(|e| e.refs == 0) {
            self.events.remove(event);
        }
    }

    /// A node for `event` taken by `step` after `prev`; unreferenced until a
    /// partial match retains it.
    pub fn add_node(&mut self, event: u32, step: u16, prev: u32) -> u32 {
        if let Some(e) = self.events.get_mut(event) {
            e.refs += 1;
        }
        if let Some(p) = self.nodes.get_mut(prev) {
            p.refs += 1;
        }
        self.nodes.insert(Node {
            event,
            step,
            prev,
            refs: 0,
        })
    }

    #[inline]
    pub fn retain(&mut self, node: u32) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.refs += 1;
        }
    }

    /// Drops one reference to `node`, freeing it (and then its predecessors)
    /// when none is left.
    pub fn release(&mut self, mut node: u32) {
        while let Some(n) = self.nodes.get_mut(node) {
            n.refs = n.refs.saturating_sub(1);
            if n.refs > 0 {
                return;
            }
            let Node { event, prev, .. } = *n;
            self.nodes.remove(node);
            if let Some(e) = self.events.get_mut(event) {
                e.refs = e.refs.saturating_sub(1);
                if e.refs == 0 {
                    self.events.remove(event);
                }
            }
            node = prev;
        }
    }

    /// The chain ending at `last`, oldest first, as `(step, event slot)`.
    pub fn chain_into(&self, last: u32, out: &mut Vec<(u16, u32)>) {
        out.clear();
        let mut node = last;
        while let Some(n) = self.nodes.get(node) {
            out.push((n.step, n.event));
            node = n.prev;
        }
        out.reverse();
    }

    pub fn event(&self, slot: u32) -> Option<&EventSlot<E>> {
        self.events.get(slot)
    }

    pub fn heap_bytes(&self) -> usize {
        self.events.heap_bytes() + self.nodes.heap_bytes()
    }
}

impl<E: Clone> SharedBuffer<E> {
    /// The events of the chain ending at `last`, grouped by step in order.
    /// Lists come from `spare` when it has some.
    pub fn materialize(
        &self,
        last: u32,
        names: &[Arc<str>],
        scratch: &mut Vec<(u16, u32)>,
        spare: &mut Spare<E>,
    ) -> Vec<(Arc<str>, Vec<E>)> {
        self.chain_into(last, scratch);
        let steps = 1 + scratch.windows(2).filter(|w| w[0].0 != w[1].0).count();
        let mut out = spare.steps.pop().unwrap_or_default();
        out.reserve(steps);
        let mut current = NONE as usize;
        for (i, &(step, slot)) in scratch.iter().enumerate() {
            let Some(e) = self.events.get(slot) else {
                continue;
            };
            if step as usize != current {
                current = step as usize;
                let name = names.get(current).cloned().unwrap_or_else(|| Arc::from(""));
                let len = scratch[i..].iter().take_while(|c| c.0 == step).count();
                let mut events = spare.events.pop().unwrap_or_default();
                events.reserve(len);
                out.push((name, events));
            }
            if let Some(last) = out.last_mut() {
                last.1.push(e.event.clone());
            }
        }
        out
    }
}

/// A partial match's events, as conditions see them.
pub(crate) struct ChainView<'a, E> {
    pub buffer: &'a SharedBuffer<E>,
    pub names: &'a [Arc<str>],
    pub last: u32,
}

impl<E> Matched<E> for ChainView<'_, E> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&E)) {
        let Some(index) = self.names.iter().position(|n| &**n == step) else {
            return;
        };
        let mut found: Vec<u32> = Vec::new();
        let mut node = self.last;
        while let Some(n) = self.buffer.nodes.get(node) {
            if n.step as usize == index {
                found.push(n.event);
            }
            node = n.prev;
        }
        for &slot in found.iter().rev() {
            if let Some(e) = self.buffer.events.get(slot) {
                f(&e.event);
            }
        }
    }
}

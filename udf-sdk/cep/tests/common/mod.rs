//! Test helpers: Flink's test `Event` (id, name, price, and the volume of its
//! `SubEvent`), and a harness that feeds timestamped events to one key.
#![allow(dead_code)]

use std::time::Duration;

use weir_cep::{Match, Matched, Nfa, Outputs, Pattern, TimedOut};

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: u32,
    pub name: &'static str,
    pub price: f64,
    /// `Some` for Flink's `SubEvent`.
    pub volume: Option<f64>,
}

pub fn ev(id: u32, name: &'static str, price: f64) -> Event {
    Event {
        id,
        name,
        price,
        volume: None,
    }
}

pub fn sub(id: u32, name: &'static str, price: f64, volume: f64) -> Event {
    Event {
        id,
        name,
        price,
        volume: Some(volume),
    }
}

pub fn name(n: &'static str) -> impl Fn(&Event, &dyn Matched<Event>) -> bool {
    move |e, _| e.name == n
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The events of a match, in order.
pub fn flat(m: &Match<Event>) -> Vec<Event> {
    m.events().cloned().collect()
}

fn sort_key(m: &[Event]) -> Vec<(u32, String, u64)> {
    m.iter()
        .map(|e| (e.id, e.name.to_string(), e.price.to_bits()))
        .collect()
}

/// Compares match lists ignoring the order of matches (as Flink's
/// `comparePatterns` does) but not the order of events within a match.
#[track_caller]
pub fn assert_same(mut actual: Vec<Vec<Event>>, mut expected: Vec<Vec<Event>>) {
    actual.sort_by_key(|m| sort_key(m));
    expected.sort_by_key(|m| sort_key(m));
    assert_eq!(actual, expected);
}

pub struct Harness {
    pub nfa: Nfa<Event>,
    pub state: weir_cep::KeyState<Event>,
    pub out: Outputs<Event>,
}

impl Harness {
    pub fn new(pattern: Pattern<Event>) -> Self {
        let nfa = pattern.compile().expect("pattern compiles");
        let state = nfa.new_state();
        Harness {
            nfa,
            state,
            out: Outputs::new(),
        }
    }

    /// Processes each `(event, timestamp)`; returns all matches so far.
    pub fn feed(&mut self, events: &[(Event, i64)]) -> Vec<Vec<Event>> {
        for (e, ts) in events {
            self.state.process(&self.nfa, e.clone(), *ts, &mut self.out);
        }
        self.matches()
    }

    pub fn advance(&mut self, time: i64) -> Vec<Vec<Event>> {
        self.state.advance_time(&self.nfa, time, &mut self.out);
        self.matches()
    }

    pub fn matches(&self) -> Vec<Vec<Event>> {
        self.out.matches.iter().map(flat).collect()
    }

    pub fn timeouts(&self) -> Vec<(Vec<Event>, i64)> {
        self.out
            .timeouts
            .iter()
            .map(|t: &TimedOut<Event>| {
                (
                    t.steps.iter().flat_map(|s| s.1.clone()).collect(),
                    t.timeout_at,
                )
            })
            .collect()
    }
}

/// Events with timestamps 1, 2, 3... in order.
pub fn seq(events: &[&Event]) -> Vec<(Event, i64)> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| ((*e).clone(), i as i64 + 1))
        .collect()
}

/// Runs `pattern` over `events` (timestamps 1, 2, 3...) and returns the matches.
pub fn run(pattern: Pattern<Event>, events: &[&Event]) -> Vec<Vec<Event>> {
    Harness::new(pattern).feed(&seq(events))
}

pub fn m(events: &[&Event]) -> Vec<Event> {
    events.iter().map(|e| (*e).clone()).collect()
}

//! The compiled NFA: states and their guarded edges.

/// An edge's guard, built from the steps' conditions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Cond {
    True,
    /// The step's condition.
    Where(u16),
    /// The step's `until` condition.
    Until(u16),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
}

impl Cond {
    pub fn not(c: Cond) -> Cond {
        Cond::Not(Box::new(c))
    }

    pub fn and(a: Cond, b: Cond) -> Cond {
        match (a, b) {
            (Cond::True, c) | (c, Cond::True) => c,
            (a, b) => Cond::And(Box::new(a), Box::new(b)),
        }
    }
}

/// What an edge does with the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    /// Add the event to the match under the source state's step, move on.
    Take,
    /// Skip the event, move to the target (often the same state).
    Ignore,
    /// Move without consuming: the target's edges see the same event.
    Proceed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Normal,
    /// A match is complete.
    Final,
    /// A negated step matched: the branch dies.
    Stop,
    /// `notFollowedBy` at the end: a match once the window closes unbroken.
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Edge {
    pub action: Action,
    pub target: u32,
    pub cond: Cond,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    /// The step whose events this state takes (`FINAL_STEP` for the final state).
    pub step: u16,
    pub kind: Kind,
    pub edges: Vec<Edge>,
    /// Whether an edge of it proceeds (most states have none: what an
    /// event does there is its own edges alone).
    pub proceeds: bool,
}

/// A pattern's fingerprint (which checkpoints carry) hashes what defines
/// a state, not `proceeds`, which its edges give: adding that flag left
/// every checkpoint written before it readable.
impl std::hash::Hash for State {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.step.hash(h);
        self.kind.hash(h);
        self.edges.hash(h);
    }
}

/// The step of the final state, which takes nothing.
pub(crate) const FINAL_STEP: u16 = u16::MAX;

/// The states, with the start state's index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Graph {
    pub states: Vec<State>,
    pub start: u32,
}

impl Graph {
    pub fn add(&mut self, step: u16, kind: Kind) -> u32 {
        self.states.push(State {
            step,
            kind,
            edges: Vec::new(),
            proceeds: false,
        });
        (self.states.len() - 1) as u32
    }

    pub fn edge(&mut self, from: u32, action: Action, target: u32, cond: Cond) {
        let state = &mut self.states[from as usize];
        state.proceeds |= action == Action::Proceed;
        state.edges.push(Edge {
            action,
            target,
            cond,
        });
    }

    pub fn kind(&self, s: u32) -> Kind {
        self.states[s as usize].kind
    }
}

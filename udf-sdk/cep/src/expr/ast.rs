//! The compiled tree: names resolved to enums, field paths pre-split.

use std::fmt;

/// The static type of an expression or a sub-expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Number,
    String,
    Bool,
    /// The `null` literal.
    Null,
    /// A value read from an event: its type is known only at run time.
    Json,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::String => "string",
            Type::Bool => "bool",
            Type::Null => "null",
            Type::Json => "json",
        })
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(Box<str>),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

impl Arith {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// Whether the comparison holds for values ordered `ord`.
    pub(crate) fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Cmp::Eq => ord == Equal,
            Cmp::Ne => ord != Equal,
            Cmp::Lt => ord == Less,
            Cmp::Le => ord != Greater,
            Cmp::Gt => ord == Greater,
            Cmp::Ge => ord != Less,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// The scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Contains,
    StartsWith,
    EndsWith,
    Abs,
}

/// Aggregates over one field of every event of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agg {
    Sum,
    Min,
    Max,
    Avg,
}

impl Agg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Avg => "avg",
        }
    }
}

/// Which event of a step `first(s)` / `last(s)` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    First,
    Last,
}

/// A node and the column it starts at (kept for the type check's messages).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Num(f64),
    Str(Box<str>),
    Bool(bool),
    Null,
    /// A path into the current event; empty = the whole event.
    Field(Box<[Seg]>),
    /// `first(step).path` / `last(step).path`.
    Pick {
        pick: Pick,
        step: Box<str>,
        path: Box<[Seg]>,
    },
    Count(Box<str>),
    Agg {
        agg: Agg,
        step: Box<str>,
        path: Box<[Seg]>,
    },
    Neg(Box<Node>),
    Not(Box<Node>),
    Arith(Arith, Box<Node>, Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Call(Func, Box<[Node]>),
}

impl Node {
    /// Calls `f` with this node and every node below it.
    pub(crate) fn walk(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        match &self.kind {
            Kind::Neg(a) | Kind::Not(a) => a.walk(f),
            Kind::Arith(_, a, b) | Kind::Cmp(_, a, b) | Kind::And(a, b) | Kind::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Kind::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            Kind::Num(_)
            | Kind::Str(_)
            | Kind::Bool(_)
            | Kind::Null
            | Kind::Field(_)
            | Kind::Pick { .. }
            | Kind::Count(_)
            | Kind::Agg { .. } => {}
        }
    }
}

/// A path as written after a step: `.user.id`, `["odd key"][0]`; empty for none.
pub(crate) fn path_suffix(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if super::lex::is_identifier(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Key(k) => out.push_str(&format!("[{}]", serde_json::Value::from(&**k))),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A path into the current event as a user would write it: `user.id`, `event["odd key"]`.
pub(crate) fn field_text(path: &[Seg]) -> String {
    let suffix = path_suffix(path);
    match suffix.strip_prefix('.') {
        Some(rest) => rest.to_string(),
        None => format!("event{suffix}"),
    }
}

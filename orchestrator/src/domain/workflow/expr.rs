//! The small expression language of workflow files.
//!
//! Conditions (`if:`) are expressions; input mappings and outputs use bare
//! paths. The grammar is deliberately tiny so that a file can be fully
//! checked at load time:
//!
//! ```text
//! expr  := and ("||" and)*
//! and   := unary ("&&" unary)*
//! unary := "!" unary | cmp
//! cmp   := atom (("==" | "!=" | "<" | "<=" | ">" | ">=") atom)?
//! atom  := path | 'string' | "string" | number | true | false | null | "(" expr ")"
//! path  := "$" ("." name | "[" index "]")*
//! ```
//!
//! A path into something absent is `null`, never an error: a condition over a
//! skipped step's output is simply false.

use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Path(Path),
    Lit(Value),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// `$.a.b[0]`: a location in the run's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

/// Why an expression did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at character {at} of `{text}`")]
pub struct ExprError {
    pub text: String,
    pub at: usize,
    pub problem: String,
}

impl Path {
    /// Parses a whole string as a path (`$.input.job`).
    pub fn parse(text: &str) -> Result<Path, ExprError> {
        let mut p = Parser::new(text);
        p.skip_ws();
        let path = p.path()?;
        p.skip_ws();
        p.end()?;
        Ok(path)
    }

    /// Looks the path up in `ctx`; `null` when any part is missing.
    pub fn get<'a>(&self, ctx: &'a Value) -> &'a Value {
        let mut cur = ctx;
        for seg in &self.0 {
            cur = match (seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.get(k).unwrap_or(&Value::Null),
                (Seg::Index(i), Value::Array(a)) => a.get(*i).unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        cur
    }

    /// The first `n` keys, for validation (`["steps", "compile"]`).
    pub fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map_while(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect()
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$")?;
        for s in &self.0 {
            match s {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut p = Parser::new(text);
        let e = p.or()?;
        p.skip_ws();
        p.end()?;
        Ok(e)
    }

    /// Evaluates to a JSON value.
    pub fn eval(&self, ctx: &Value) -> Value {
        match self {
            Expr::Path(p) => p.get(ctx).clone(),
            Expr::Lit(v) => v.clone(),
            Expr::Not(e) => Value::Bool(!truthy(&e.eval(ctx))),
            Expr::And(a, b) => Value::Bool(truthy(&a.eval(ctx)) && truthy(&b.eval(ctx))),
            Expr::Or(a, b) => Value::Bool(truthy(&a.eval(ctx)) || truthy(&b.eval(ctx))),
            Expr::Cmp(a, op, b) => Value::Bool(compare(&a.eval(ctx), *op, &b.eval(ctx))),
        }
    }

    /// Evaluates as a condition.
    pub fn test(&self, ctx: &Value) -> bool {
        truthy(&self.eval(ctx))
    }

    /// Every path the expression reads.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Expr::Path(p) => out.push(p),
            Expr::Lit(_) => {}
            Expr::Not(e) => e.collect(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(a, _, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }
}

/// `null`, `false`, `0`, `""`, `[]` and `{}` are false; everything else is true.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        CmpOp::Eq => ord == Some(Ordering::Equal) || (ord.is_none() && a == b),
        CmpOp::Ne => !(ord == Some(Ordering::Equal) || (ord.is_none() && a == b)),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn err(&self, problem: impl Into<String>) -> ExprError {
        ExprError {
            text: self.text.chars().take(120).collect(),
            at: self.text[..self.pos].chars().count(),
            problem: problem.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn end(&self) -> Result<(), ExprError> {
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(self.err("unexpected text"))
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.skip_ws();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.atom()?;
        self.skip_ws();
        let ops = [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ];
        for (tok, op) in ops {
            if self.eat(tok) {
                let right = self.atom()?;
                return Ok(Expr::Cmp(Box::new(left), op, Box::new(right)));
            }
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        self.skip_ws();
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Err(self.err("expected a value"));
        };
        match c {
            '$' => Ok(Expr::Path(self.path()?)),
            '(' => {
                self.pos += 1;
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(self.err("expected `)`"));
                }
                Ok(e)
            }
            '\'' | '"' => {
                let body = &rest[1..];
                let Some(end) = body.find(c) else {
                    return Err(self.err("unterminated string"));
                };
                let s = body[..end].to_owned();
                self.pos += end + 2;
                Ok(Expr::Lit(Value::String(s)))
            }
            _ => {
                let len = rest
                    .find(|ch: char| {
                        !(ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' || ch == '_')
                    })
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                let value = match word {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => match serde_json::from_str::<serde_json::Number>(word) {
                        Ok(n) => Value::Number(n),
                        Err(_) => {
                            return Err(self.err(if word.is_empty() {
                                format!("unexpected `{c}`")
                            } else {
                                format!("`{word}` is not a value (paths start with `$`, strings are quoted)")
                            }))
                        }
                    },
                };
                self.pos += len;
                Ok(Expr::Lit(value))
            }
        }
    }

    fn path(&mut self) -> Result<Path, ExprError> {
        if !self.rest().starts_with('$') {
            return Err(self.err("a path starts with `$`"));
        }
        self.pos += 1;
        let mut segs = Vec::new();
        loop {
            let rest = self.rest();
            if let Some(after) = rest.strip_prefix('.') {
                let len = after
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
                    .unwrap_or(after.len());
                if len == 0 {
                    self.pos += 1;
                    return Err(self.err("expected a name after `.`"));
                }
                segs.push(Seg::Key(after[..len].to_owned()));
                self.pos += 1 + len;
            } else if let Some(after) = rest.strip_prefix('[') {
                let len = after
                    .find(']')
                    .ok_or_else(|| self.err("unterminated `[`"))?;
                let idx = after[..len]
                    .trim()
                    .parse()
                    .map_err(|_| self.err("an index is a whole number"))?;
                segs.push(Seg::Index(idx));
                self.pos += len + 2;
            } else {
                break;
            }
        }
        Ok(Path(segs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"input": {"cause": "upgrade", "n": 3, "allow": false},
               "steps": {"info": {"output": {"compiled": true, "list": [1, 2]}}}})
    }

    #[test]
    fn evaluates_conditions() {
        let t = |s: &str| Expr::parse(s).unwrap().test(&ctx());
        assert!(t("$.input.cause == 'upgrade'"));
        assert!(t("$.input.cause != \"deploy\""));
        assert!(t("$.input.n >= 3 && $.input.n < 4"));
        assert!(t("!$.input.allow"));
        assert!(t("$.steps.info.output.compiled"));
        assert!(t("$.steps.info.output.list[1] == 2"));
        assert!(t("$.steps.missing.output.x == null"));
        assert!(!t("$.steps.missing.output.x"));
        assert!(t("($.input.allow || $.input.n == 3) && true"));
    }

    #[test]
    fn reports_where_parsing_failed() {
        let e = Expr::parse("$.input.cause == upgrade").unwrap_err();
        assert_eq!(e.at, 17, "{e}");
        assert!(e.problem.contains("not a value"), "{e}");
        assert!(Expr::parse("$.a ==").is_err());
        assert!(Expr::parse("($.a").is_err());
        assert!(Expr::parse("$.a $.b").is_err());
        assert!(Path::parse("$.a.").is_err());
        assert!(Path::parse("input.a").is_err());
    }

    #[test]
    fn lists_paths_for_validation() {
        let e = Expr::parse("$.steps.a.output.x == 1 || !$.input.y").unwrap();
        let keys: Vec<Vec<&str>> = e.paths().iter().map(|p| p.keys()).collect();
        assert_eq!(
            keys,
            vec![vec!["steps", "a", "output", "x"], vec!["input", "y"]]
        );
        assert_eq!(Path::parse("$.a[2].b").unwrap().to_string(), "$.a[2].b");
    }
}

//! Parser: tokens to the tree, by precedence climbing.
//!
//! Binding, loosest first: `||`, `&&`, comparisons (not chainable),
//! `+ -`, `* /`, then the prefixes `! -`. Binary operators associate left.

use super::ast::{Agg, Arith, Cmp, Func, Kind, Node, Pick, Seg};
use super::error::{ExprError, ExprErrorKind};
use super::lex::{is_identifier, lex, Tok, Token};
use super::suggest::closest;

/// Every name callable as `name(...)`, for "did you mean".
pub(crate) const FUNCTIONS: [&str; 11] = [
    "contains",
    "starts_with",
    "ends_with",
    "abs",
    "first",
    "last",
    "count",
    "sum",
    "min",
    "max",
    "avg",
];

pub(crate) fn parse(src: &str) -> Result<Node, ExprError> {
    let toks = lex(src)?;
    if toks.len() == 1 {
        return Err(ExprError::new(1, ExprErrorKind::Empty));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let node = p.binary(0)?;
    match p.peek() {
        Tok::Eof => Ok(node),
        _ => Err(p.expected("an operator or the end of the expression")),
    }
}

/// How deeply parentheses and prefix operators may nest: far more than a
/// rule needs, and few enough that parsing, checking and evaluating (all
/// recursive) cannot exhaust a thread's stack on a hostile rule.
pub(crate) const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

enum Bin {
    Or,
    And,
    Cmp(Cmp),
    Arith(Arith),
}

fn binary_op(t: &Tok) -> Option<(u8, Bin)> {
    Some(match t {
        Tok::Or => (1, Bin::Or),
        Tok::And => (2, Bin::And),
        Tok::Eq => (3, Bin::Cmp(Cmp::Eq)),
        Tok::Ne => (3, Bin::Cmp(Cmp::Ne)),
        Tok::Lt => (3, Bin::Cmp(Cmp::Lt)),
        Tok::Le => (3, Bin::Cmp(Cmp::Le)),
        Tok::Gt => (3, Bin::Cmp(Cmp::Gt)),
        Tok::Ge => (3, Bin::Cmp(Cmp::Ge)),
        Tok::Plus => (4, Bin::Arith(Arith::Add)),
        Tok::Minus => (4, Bin::Arith(Arith::Sub)),
        Tok::Star => (5, Bin::Arith(Arith::Mul)),
        Tok::Slash => (5, Bin::Arith(Arith::Div)),
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn col(&self) -> usize {
        self.toks[self.pos].col
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        // The trailing Eof is never consumed, so `pos` stays in bounds.
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn expected(&self, expected: &'static str) -> ExprError {
        ExprError::new(
            self.col(),
            ExprErrorKind::Expected {
                expected,
                found: self.peek().describe(),
            },
        )
    }

    fn expect(&mut self, tok: Tok, expected: &'static str) -> Result<(), ExprError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(expected))
        }
    }

    /// Operators binding at least as tightly as `min_prec`.
    fn binary(&mut self, min_prec: u8) -> Result<Node, ExprError> {
        let mut lhs = self.unary()?;
        let mut lhs_is_cmp = false;
        while let Some((prec, op)) = binary_op(self.peek()) {
            if prec < min_prec {
                break;
            }
            let op_col = self.col();
            if matches!(op, Bin::Cmp(_)) && lhs_is_cmp {
                return Err(ExprError::new(op_col, ExprErrorKind::ChainedComparison));
            }
            self.bump();
            let rhs = self.binary(prec + 1)?;
            let col = lhs.col;
            let (l, r) = (Box::new(lhs), Box::new(rhs));
            lhs_is_cmp = matches!(op, Bin::Cmp(_));
            let kind = match op {
                Bin::Or => Kind::Or(l, r),
                Bin::And => Kind::And(l, r),
                Bin::Cmp(c) => Kind::Cmp(c, l, r),
                Bin::Arith(a) => Kind::Arith(a, l, r),
            };
            lhs = Node { kind, col };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::new(
                self.col(),
                ExprErrorKind::TooDeep(MAX_DEPTH),
            ));
        }
        self.depth += 1;
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }

    fn unary_inner(&mut self) -> Result<Node, ExprError> {
        let col = self.col();
        match self.peek() {
            Tok::Not => {
                self.bump();
                let inner = self.unary()?;
                Ok(Node {
                    kind: Kind::Not(Box::new(inner)),
                    col,
                })
            }
            Tok::Minus => {
                self.bump();
                let inner = self.unary()?;
                // Fold `-5` into a literal so constants cost nothing at run time.
                let kind = match inner.kind {
                    Kind::Num(n) => Kind::Num(-n),
                    _ => Kind::Neg(Box::new(inner)),
                };
                Ok(Node { kind, col })
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let col = self.col();
        let kind = match self.peek().clone() {
            Tok::Num(n) => {
                self.bump();
                Kind::Num(n)
            }
            Tok::Str(s) => {
                self.bump();
                Kind::Str(s.into())
            }
            Tok::LParen => {
                self.bump();
                let inner = self.binary(0)?;
                self.expect(Tok::RParen, "')'")?;
                // Keep the inner node (and its column); parentheses leave no trace.
                return Ok(inner);
            }
            Tok::Ident(name) => {
                self.bump();
                if *self.peek() == Tok::LParen {
                    return self.call(&name, col);
                }
                match name.as_str() {
                    "true" => Kind::Bool(true),
                    "false" => Kind::Bool(false),
                    "null" => Kind::Null,
                    "event" => Kind::Field(self.path(Vec::new())?),
                    _ => Kind::Field(self.path(vec![Seg::Key(name.into())])?),
                }
            }
            _ => return Err(self.expected("an expression")),
        };
        Ok(Node { kind, col })
    }

    /// Trailing `.key`, `["key"]` and `[index]` segments, appended to `segs`.
    fn path(&mut self, mut segs: Vec<Seg>) -> Result<Box<[Seg]>, ExprError> {
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    match self.peek().clone() {
                        Tok::Ident(k) => {
                            self.bump();
                            segs.push(Seg::Key(k.into()));
                        }
                        _ => return Err(self.expected("a field name after '.'")),
                    }
                }
                Tok::LBracket => {
                    self.bump();
                    match self.peek().clone() {
                        Tok::Str(k) => segs.push(Seg::Key(k.into())),
                        Tok::Num(n) if n.fract() == 0.0 && n >= 0.0 && n <= u32::MAX as f64 => {
                            segs.push(Seg::Index(n as usize))
                        }
                        _ => return Err(self.expected("a quoted key or an array index")),
                    }
                    self.bump();
                    self.expect(Tok::RBracket, "']'")?;
                }
                _ => return Ok(segs.into()),
            }
        }
    }

    fn step_name(&mut self, func: &'static str) -> Result<Box<str>, ExprError> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok(s.into())
            }
            Tok::Str(step) if is_identifier(&step) => Err(ExprError::new(
                col,
                ExprErrorKind::QuotedStep { func, step },
            )),
            Tok::Str(s) => Err(ExprError::new(col, ExprErrorKind::StepNotIdentifier(s))),
            _ => Err(self.expected("a step name")),
        }
    }

    /// `name(` has been read up to the name; the cursor is on `(`.
    fn call(&mut self, name: &str, col: usize) -> Result<Node, ExprError> {
        let func = match name {
            "contains" => Func::Contains,
            "starts_with" => Func::StartsWith,
            "ends_with" => Func::EndsWith,
            "abs" => Func::Abs,
            "first" | "last" => return self.pick(name, col),
            "count" => return self.count(col),
            "sum" => return self.agg(Agg::Sum, col),
            "min" => return self.agg(Agg::Min, col),
            "max" => return self.agg(Agg::Max, col),
            "avg" => return self.agg(Agg::Avg, col),
            _ => {
                let suggestion = closest(name, FUNCTIONS).map(str::to_string);
                return Err(ExprError::new(
                    col,
                    ExprErrorKind::UnknownFunction {
                        name: name.to_string(),
                        suggestion,
                    },
                ));
            }
        };
        self.bump();
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                args.push(self.binary(0)?);
                match self.peek() {
                    Tok::Comma => {
                        self.bump();
                    }
                    Tok::RParen => break,
                    _ => return Err(self.expected("',' or ')'")),
                }
            }
        }
        self.bump();
        let (fname, arity) = match func {
            Func::Contains => ("contains", 2),
            Func::StartsWith => ("starts_with", 2),
            Func::EndsWith => ("ends_with", 2),
            Func::Abs => ("abs", 1),
        };
        if args.len() != arity {
            return Err(ExprError::new(
                col,
                ExprErrorKind::Arity {
                    func: fname,
                    expected: arity,
                    found: args.len(),
                },
            ));
        }
        Ok(Node {
            kind: Kind::Call(func, args.into()),
            col,
        })
    }

    fn pick(&mut self, name: &str, col: usize) -> Result<Node, ExprError> {
        let (pick, fname) = if name == "first" {
            (Pick::First, "first")
        } else {
            (Pick::Last, "last")
        };
        self.bump();
        let step = self.step_name(fname)?;
        if *self.peek() == Tok::Dot {
            // `first(a.x)` is a natural slip for `first(a).x`.
            return Err(self.expected("')' (write first(step).field)"));
        }
        self.expect(Tok::RParen, "')'")?;
        let path = self.path(Vec::new())?;
        Ok(Node {
            kind: Kind::Pick { pick, step, path },
            col,
        })
    }

    fn count(&mut self, col: usize) -> Result<Node, ExprError> {
        self.bump();
        let step = self.step_name("count")?;
        if matches!(self.peek(), Tok::Dot | Tok::LBracket) {
            return Err(ExprError::new(self.col(), ExprErrorKind::CountTakesStep));
        }
        self.expect(Tok::RParen, "')'")?;
        Ok(Node {
            kind: Kind::Count(step),
            col,
        })
    }

    fn agg(&mut self, agg: Agg, col: usize) -> Result<Node, ExprError> {
        self.bump();
        let step = self.step_name(agg.name())?;
        let path = self.path(Vec::new())?;
        if path.is_empty() {
            return Err(ExprError::new(
                col,
                ExprErrorKind::AggregateNeedsField { func: agg.name() },
            ));
        }
        self.expect(Tok::RParen, "')'")?;
        Ok(Node {
            kind: Kind::Agg { agg, step, path },
            col,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree in prefix notation, to compare shapes compactly.
    fn sexp(n: &Node) -> String {
        let path = |p: &[Seg]| {
            p.iter()
                .map(|s| match s {
                    Seg::Key(k) => format!(".{k}"),
                    Seg::Index(i) => format!("[{i}]"),
                })
                .collect::<String>()
        };
        match &n.kind {
            Kind::Num(v) => format!("{v}"),
            Kind::Str(s) => format!("{s:?}"),
            Kind::Bool(b) => format!("{b}"),
            Kind::Null => "null".into(),
            Kind::Field(p) => format!("${}", path(p)),
            Kind::Pick {
                pick,
                step,
                path: p,
            } => format!("({pick:?} {step}{})", path(p)),
            Kind::Count(s) => format!("(count {s})"),
            Kind::Agg { agg, step, path: p } => format!("({} {step}{})", agg.name(), path(p)),
            Kind::Neg(a) => format!("(neg {})", sexp(a)),
            Kind::Not(a) => format!("(! {})", sexp(a)),
            Kind::Arith(op, a, b) => format!("({} {} {})", op.symbol(), sexp(a), sexp(b)),
            Kind::Cmp(op, a, b) => format!("({} {} {})", op.symbol(), sexp(a), sexp(b)),
            Kind::And(a, b) => format!("(&& {} {})", sexp(a), sexp(b)),
            Kind::Or(a, b) => format!("(|| {} {})", sexp(a), sexp(b)),
            Kind::Call(f, args) => format!(
                "({f:?} {})",
                args.iter().map(sexp).collect::<Vec<_>>().join(" ")
            ),
        }
    }

    fn p(src: &str) -> String {
        sexp(&parse(src).unwrap())
    }

    fn err(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn precedence() {
        assert_eq!(p("a || b && c"), "(|| $.a (&& $.b $.c))");
        assert_eq!(p("a && b || c"), "(|| (&& $.a $.b) $.c)");
        assert_eq!(p("a == 1 && b < 2"), "(&& (== $.a 1) (< $.b 2))");
        assert_eq!(
            p("a + b * c > d - e / f"),
            "(> (+ $.a (* $.b $.c)) (- $.d (/ $.e $.f)))"
        );
        assert_eq!(p("a - b - c"), "(- (- $.a $.b) $.c)");
        assert_eq!(p("a / b / c"), "(/ (/ $.a $.b) $.c)");
        assert_eq!(p("a || b || c"), "(|| (|| $.a $.b) $.c)");
        assert_eq!(p("(a + b) * c"), "(* (+ $.a $.b) $.c)");
        assert_eq!(p("!a && b"), "(&& (! $.a) $.b)");
        assert_eq!(p("!(a && b)"), "(! (&& $.a $.b))");
        assert_eq!(p("-a * b"), "(* (neg $.a) $.b)");
        assert_eq!(p("- -a"), "(neg (neg $.a))");
        assert_eq!(p("-2 * 3"), "(* -2 3)");
        assert_eq!(p("!!true"), "(! (! true))");
        assert_eq!(p("a != null"), "(!= $.a null)");
        assert_eq!(
            p("x >= 1 || y <= 2 && z"),
            "(|| (>= $.x 1) (&& (<= $.y 2) $.z))"
        );
    }

    #[test]
    fn columns_of_nodes() {
        let n = parse("a  + count(s)").unwrap();
        let Kind::Arith(_, l, r) = &n.kind else {
            panic!("{n:?}")
        };
        assert_eq!((n.col, l.col, r.col), (1, 1, 6));
    }

    #[test]
    fn paths() {
        assert_eq!(p("user.country"), "$.user.country");
        assert_eq!(p("event.user.country"), "$.user.country");
        assert_eq!(p("event"), "$");
        // A field literally named `event` sits under the root keyword.
        assert_eq!(p("event.event"), "$.event");
        assert_eq!(p(r#"event["odd key"].x"#), "$.odd key.x");
        assert_eq!(p(r#"a["b"][2].c"#), "$.a.b[2].c");
        // Keywords are plain keys after a dot.
        assert_eq!(p("a.true.null"), "$.a.true.null");
        assert_eq!(p("count"), "$.count");
        assert_eq!(
            err("a."),
            "column 3: expected a field name after '.', found end of input"
        );
        assert_eq!(
            err("a[-1]"),
            "column 3: expected a quoted key or an array index, found '-'"
        );
        assert_eq!(
            err("a[1.5]"),
            "column 3: expected a quoted key or an array index, found number 1.5"
        );
        assert_eq!(
            err(r#"a["x""#),
            "column 6: expected ']', found end of input"
        );
    }

    #[test]
    fn literals() {
        assert_eq!(p(r#""a\"b""#), r#""a\"b""#);
        assert_eq!(p("1.5"), "1.5");
        assert_eq!(p("true || false"), "(|| true false)");
    }

    #[test]
    fn calls_and_aggregates() {
        assert_eq!(
            p(r#"contains(user.country, "U")"#),
            r#"(Contains $.user.country "U")"#
        );
        assert_eq!(p(r#"starts_with(a, "x")"#), r#"(StartsWith $.a "x")"#);
        assert_eq!(p(r#"ends_with(a, "x")"#), r#"(EndsWith $.a "x")"#);
        assert_eq!(p("abs(a - 1)"), "(Abs (- $.a 1))");
        assert_eq!(p("first(fail).user.id"), "(First fail.user.id)");
        assert_eq!(p("last(fail)"), "(Last fail)");
        assert_eq!(p(r#"last(fail)["k"][0]"#), "(Last fail.k[0])");
        assert_eq!(p("count(fail) >= 3"), "(>= (count fail) 3)");
        assert_eq!(
            p("sum(a.x) + min(a.x) + max(a.y.z) + avg(b.v)"),
            "(+ (+ (+ (sum a.x) (min a.x)) (max a.y.z)) (avg b.v))"
        );
        // Step names are identifiers, keywords included.
        assert_eq!(p("count(event)"), "(count event)");
    }

    #[test]
    fn call_errors() {
        assert_eq!(
            err(r#"amount > contians(a, "b")"#),
            "column 10: unknown function 'contians' (did you mean 'contains'?)"
        );
        assert_eq!(
            err("frobnicate(a)"),
            "column 1: unknown function 'frobnicate'"
        );
        assert_eq!(
            err("contains(a)"),
            "column 1: contains takes 2 arguments, found 1"
        );
        assert_eq!(err("abs(a, b)"), "column 1: abs takes 1 argument, found 2");
        assert_eq!(err("abs()"), "column 1: abs takes 1 argument, found 0");
        assert_eq!(err("abs(a b)"), "column 7: expected ',' or ')', found 'b'");
        assert_eq!(
            err("sum(a)"),
            "column 1: sum needs a field of the step: sum(step.field)"
        );
        assert_eq!(
            err("count(a.x)"),
            "column 8: count takes a step name only: count(step)"
        );
        assert_eq!(err("count()"), "column 7: expected a step name, found ')'");
        assert_eq!(
            err("count(1)"),
            "column 7: expected a step name, found number 1"
        );
        assert_eq!(
            err(r#"count("fail")"#),
            "column 7: write the step name without quotes: count(fail)"
        );
        assert_eq!(
            err(r#"count("my step")"#),
            "column 7: step 'my step' cannot be referenced: steps used in expressions must have identifier names (letters, digits, '_')"
        );
        assert_eq!(
            err("first(a.x)"),
            "column 8: expected ')' (write first(step).field), found '.'"
        );
        assert_eq!(err("count(a, b)"), "column 8: expected ')', found ','");
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(p(&ok), "1");
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(
            err(&deep).contains("nests deeper than 64"),
            "{}",
            err(&deep)
        );
        assert!(err(&"!".repeat(100_000)).contains("nests deeper"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err(""), "column 1: empty expression");
        assert_eq!(err("   "), "column 1: empty expression");
        assert_eq!(
            err("a =="),
            "column 5: expected an expression, found end of input"
        );
        assert_eq!(err("(a"), "column 3: expected ')', found end of input");
        assert_eq!(
            err("a b"),
            "column 3: expected an operator or the end of the expression, found 'b'"
        );
        assert_eq!(
            err("a)"),
            "column 2: expected an operator or the end of the expression, found ')'"
        );
        assert_eq!(err("&& a"), "column 1: expected an expression, found '&&'");
        assert_eq!(
            err("1 < a < 3"),
            "column 7: comparisons cannot be chained; combine them with '&&'"
        );
        assert_eq!(
            err("a == b != c"),
            "column 8: comparisons cannot be chained; combine them with '&&'"
        );
        // Parenthesised, the comparison is an operand like any other.
        assert_eq!(p("(a == b) == c"), "(== (== $.a $.b) $.c)");
    }
}

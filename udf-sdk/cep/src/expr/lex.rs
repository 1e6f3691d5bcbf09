//! Lexer: source text to tokens, each with its 1-based character column.

use super::error::{ExprError, ExprErrorKind};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Str(String),
    /// Any word, keywords included: the parser decides what `true` or
    /// `event` mean by position, so `a.true` stays a field.
    Ident(String),
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        let p = |s: &str| format!("'{s}'");
        match self {
            Tok::Num(n) => format!("number {n}"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Ident(s) => p(s),
            Tok::Dot => p("."),
            Tok::Comma => p(","),
            Tok::LParen => p("("),
            Tok::RParen => p(")"),
            Tok::LBracket => p("["),
            Tok::RBracket => p("]"),
            Tok::Eq => p("=="),
            Tok::Ne => p("!="),
            Tok::Lt => p("<"),
            Tok::Le => p("<="),
            Tok::Gt => p(">"),
            Tok::Ge => p(">="),
            Tok::And => p("&&"),
            Tok::Or => p("||"),
            Tok::Not => p("!"),
            Tok::Plus => p("+"),
            Tok::Minus => p("-"),
            Tok::Star => p("*"),
            Tok::Slash => p("/"),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

/// A token and the column of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub col: usize,
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `s` can be written bare in an expression (as a step or field name).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if is_ident_start(c)) && chars.all(is_ident_char)
}

/// Splits `src` into tokens; the last one is always `Eof`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            '.' => (Tok::Dot, 1),
            ',' => (Tok::Comma, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '=' if next == Some('=') => (Tok::Eq, 2),
            '!' if next == Some('=') => (Tok::Ne, 2),
            '!' => (Tok::Not, 1),
            '<' if next == Some('=') => (Tok::Le, 2),
            '<' => (Tok::Lt, 1),
            '>' if next == Some('=') => (Tok::Ge, 2),
            '>' => (Tok::Gt, 1),
            '&' if next == Some('&') => (Tok::And, 2),
            '|' if next == Some('|') => (Tok::Or, 2),
            '=' | '&' | '|' => {
                return Err(ExprError::new(col, ExprErrorKind::LoneOperator(c)));
            }
            '"' => {
                let (s, len) = string(&chars[i..], col)?;
                (Tok::Str(s), len)
            }
            c if c.is_ascii_digit() => number(&chars[i..], col)?,
            c if is_ident_start(c) => {
                let len = chars[i..].iter().take_while(|c| is_ident_char(**c)).count();
                (Tok::Ident(chars[i..i + len].iter().collect()), len)
            }
            c => return Err(ExprError::new(col, ExprErrorKind::UnexpectedChar(c))),
        };
        out.push(Token { tok, col });
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        col: chars.len() + 1,
    });
    Ok(out)
}

/// `digits [. digits] [(e|E) [+|-] digits]`; a trailing letter is an error
/// so `12abc` is not read as `12` then `abc`.
fn number(s: &[char], col: usize) -> Result<(Tok, usize), ExprError> {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut len = digits(0);
    if s.get(len) == Some(&'.') && s.get(len + 1).is_some_and(|c| c.is_ascii_digit()) {
        len += 1 + digits(len + 1);
    }
    if matches!(s.get(len), Some('e' | 'E')) {
        let mut at = len + 1;
        if matches!(s.get(at), Some('+' | '-')) {
            at += 1;
        }
        let exp = digits(at);
        if exp == 0 {
            let text: String = s[..at].iter().collect();
            return Err(ExprError::new(col, ExprErrorKind::BadNumber(text)));
        }
        len = at + exp;
    }
    if s.get(len).is_some_and(|c| is_ident_char(*c)) {
        let end = len + s[len..].iter().take_while(|c| is_ident_char(**c)).count();
        let text: String = s[..end].iter().collect();
        return Err(ExprError::new(col, ExprErrorKind::BadNumber(text)));
    }
    let text: String = s[..len].iter().collect();
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok((Tok::Num(n), len)),
        _ => Err(ExprError::new(col, ExprErrorKind::BadNumber(text))),
    }
}

/// A double-quoted string with JSON's escapes; returns the text and the
/// number of source characters it took, quotes included.
fn string(s: &[char], col: usize) -> Result<(String, usize), ExprError> {
    let mut out = String::new();
    let mut i = 1;
    loop {
        match s.get(i) {
            None => return Err(ExprError::new(col, ExprErrorKind::UnterminatedString)),
            Some('"') => return Ok((out, i + 1)),
            Some('\\') => {
                let esc_col = col + i;
                let Some(&e) = s.get(i + 1) else {
                    return Err(ExprError::new(col, ExprErrorKind::UnterminatedString));
                };
                i += 2;
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String = s.iter().skip(i).take(4).collect();
                        let ch = (hex.len() == 4)
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                        match ch {
                            Some(ch) => out.push(ch),
                            None => {
                                return Err(ExprError::new(
                                    esc_col,
                                    ExprErrorKind::BadEscape(format!("u{hex}")),
                                ))
                            }
                        }
                        i += 4;
                    }
                    other => {
                        return Err(ExprError::new(
                            esc_col,
                            ExprErrorKind::BadEscape(other.to_string()),
                        ))
                    }
                }
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn err(src: &str) -> String {
        lex(src).unwrap_err().to_string()
    }

    #[test]
    fn operators_and_columns() {
        let t = lex("a.b>=1.5&&!c").unwrap();
        let cols: Vec<usize> = t.iter().map(|t| t.col).collect();
        assert_eq!(cols, vec![1, 2, 3, 4, 6, 9, 11, 12, 13]);
        assert_eq!(
            toks("== != < <= > >= && || ! + - * / ( ) [ ] , ."),
            vec![
                Tok::Eq,
                Tok::Ne,
                Tok::Lt,
                Tok::Le,
                Tok::Gt,
                Tok::Ge,
                Tok::And,
                Tok::Or,
                Tok::Not,
                Tok::Plus,
                Tok::Minus,
                Tok::Star,
                Tok::Slash,
                Tok::LParen,
                Tok::RParen,
                Tok::LBracket,
                Tok::RBracket,
                Tok::Comma,
                Tok::Dot,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(toks("12"), vec![Tok::Num(12.0), Tok::Eof]);
        assert_eq!(toks("0.25"), vec![Tok::Num(0.25), Tok::Eof]);
        assert_eq!(
            toks("1e3 2.5E-1"),
            vec![Tok::Num(1000.0), Tok::Num(0.25), Tok::Eof]
        );
        // `1.` is a number then a dot (a path step), not `1.0`.
        assert_eq!(
            toks("1.x"),
            vec![Tok::Num(1.0), Tok::Dot, Tok::Ident("x".into()), Tok::Eof]
        );
        assert_eq!(err("12abc"), "column 1: invalid number '12abc'");
        assert_eq!(err("x + 1e"), "column 5: invalid number '1e'");
        assert_eq!(err("1e999"), "column 1: invalid number '1e999'");
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            toks(r#""a\"b\\c\n\t\r\/\u00e9""#),
            vec![Tok::Str("a\"b\\c\n\t\r/é".into()), Tok::Eof]
        );
        assert_eq!(toks(r#""héllo" x"#)[0], Tok::Str("héllo".into()));
        // Columns count characters, not bytes.
        assert_eq!(lex(r#""é" x"#).unwrap()[1].col, 5);
        assert_eq!(err(r#"a == "abc"#), "column 6: unterminated string");
        assert_eq!(err(r#""a\qb""#), "column 3: invalid escape '\\q' in string");
        assert_eq!(
            err(r#""\u12""#),
            "column 2: invalid escape '\\u12\"' in string"
        );
    }

    #[test]
    fn bad_characters() {
        assert_eq!(err("a = 1"), "column 3: unexpected '='; did you mean '=='?");
        assert_eq!(err("a & b"), "column 3: unexpected '&'; did you mean '&&'?");
        assert_eq!(err("a | b"), "column 3: unexpected '|'; did you mean '||'?");
        assert_eq!(err("a # b"), "column 3: unexpected character '#'");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("fail_2"));
        assert!(is_identifier("_x"));
        assert!(!is_identifier("2x"));
        assert!(!is_identifier("my-step"));
        assert!(!is_identifier(""));
        assert_eq!(toks("true"), vec![Tok::Ident("true".into()), Tok::Eof]);
    }
}

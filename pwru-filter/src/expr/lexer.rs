//! Tokens of the expression language, each with its 1-based column.

use super::error::At;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    Num(u64),
    Arrow,
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Amp,
    AndAnd,
    OrOr,
    Bang,
    Minus,
    Cmp(CmpOp),
    End,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator that holds when the operands are swapped (`a < b` is `b > a`).
    pub(crate) fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// Splits `text` into tokens; the last is always [`Tok::End`].
pub(crate) fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, At> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), col));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let parsed = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => word.parse::<u64>(),
            };
            let value = parsed.map_err(|_| {
                At::new(
                    col,
                    format!(
                        "{word:?} is not a number; write a decimal or 0x-prefixed hexadecimal \
                         integer below 2^64"
                    ),
                )
            })?;
            out.push((Tok::Num(value), col));
            continue;
        }
        let (tok, len) = match (c, next) {
            ('-', Some('>')) => (Tok::Arrow, 2),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('|', Some('|')) => (Tok::OrOr, 2),
            ('=', Some('=')) => (Tok::Cmp(CmpOp::Eq), 2),
            ('!', Some('=')) => (Tok::Cmp(CmpOp::Ne), 2),
            ('<', Some('=')) => (Tok::Cmp(CmpOp::Le), 2),
            ('>', Some('=')) => (Tok::Cmp(CmpOp::Ge), 2),
            ('<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            ('>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            ('-', _) => (Tok::Minus, 1),
            ('.', _) => (Tok::Dot, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('&', _) => (Tok::Amp, 1),
            ('!', _) => (Tok::Bang, 1),
            ('=', _) => return Err(At::new(col, "`=` is an assignment; compare with `==`")),
            _ => {
                return Err(At::new(
                    col,
                    format!(
                        "unexpected character {c:?}; the language has member chains \
                         (skb->dev->ifindex, skb->cb[0]), integers, `&`, comparisons, \
                         `&&`, `||`, `!` and parentheses"
                    ),
                ))
            }
        };
        out.push((tok, col));
        i += len;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

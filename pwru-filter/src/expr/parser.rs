//! Text -> syntax tree. The grammar, loosest binding first:
//!
//! ```text
//! or      := and ('||' and)*
//! and     := unary ('&&' unary)*
//! unary   := '!' unary | compare
//! compare := masked (CMP masked)?
//! masked  := operand ('&' operand)*
//! operand := chain | '-'? number | '(' or ')'
//! chain   := IDENT (('->' | '.') IDENT | '[' number ']')*
//! ```
//!
//! `&` binds tighter than the comparisons, unlike C: `skb->mark & 0xff == 1` masks first, as
//! pwru's own examples read (in C it would be `skb->mark & (0xff == 1)`).

use super::error::At;
use super::lexer::{CmpOp, Tok};

/// One step of a member chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    /// `->name` (`arrow`) or `.name`.
    Member {
        name: String,
        arrow: bool,
        column: usize,
    },
    /// `[index]`.
    Index { index: u64, column: usize },
}

/// The syntax tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ast {
    Chain {
        root: String,
        links: Vec<Link>,
        column: usize,
    },
    Num {
        value: u64,
        column: usize,
    },
    Mask {
        lhs: Box<Ast>,
        rhs: Box<Ast>,
        column: usize,
    },
    Cmp {
        op: CmpOp,
        lhs: Box<Ast>,
        rhs: Box<Ast>,
        column: usize,
    },
    And(Box<Ast>, Box<Ast>),
    Or(Box<Ast>, Box<Ast>),
    Not {
        inner: Box<Ast>,
        column: usize,
    },
}

impl Ast {
    pub(crate) fn column(&self) -> usize {
        match self {
            Ast::Chain { column, .. }
            | Ast::Num { column, .. }
            | Ast::Mask { column, .. }
            | Ast::Cmp { column, .. }
            | Ast::Not { column, .. } => *column,
            Ast::And(l, _) | Ast::Or(l, _) => l.column(),
        }
    }
}

/// Deepest nesting of parentheses and `!` accepted (keeps recursion bounded on any input).
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Parses the token list of one expression.
pub(crate) fn parse(toks: Vec<(Tok, usize)>) -> Result<Ast, At> {
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &Tok::End {
        return Err(At::new(
            1,
            "the expression is empty; write e.g. `skb->mark == 0x1`",
        ));
    }
    let ast = p.or()?;
    match p.peek() {
        Tok::End => Ok(ast),
        other => Err(At::new(
            p.column(),
            format!(
                "unexpected {}; join conditions with `&&` or `||`",
                describe(other)
            ),
        )),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("name `{s}`"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Arrow => "`->`".into(),
        Tok::Dot => "`.`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Amp => "`&`".into(),
        Tok::AndAnd => "`&&`".into(),
        Tok::OrOr => "`||`".into(),
        Tok::Bang => "`!`".into(),
        Tok::Minus => "`-`".into(),
        Tok::Cmp(_) => "a comparison operator".into(),
        Tok::End => "end of expression".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn column(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn deeper(&mut self) -> Result<(), At> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(At::new(
                self.column(),
                format!("nested more than {MAX_DEPTH} levels deep; simplify the expression"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Ast, At> {
        let mut lhs = self.and()?;
        while self.peek() == &Tok::OrOr {
            self.bump();
            let rhs = self.and()?;
            lhs = Ast::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Ast, At> {
        let mut lhs = self.unary()?;
        while self.peek() == &Tok::AndAnd {
            self.bump();
            let rhs = self.unary()?;
            lhs = Ast::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Ast, At> {
        if self.peek() == &Tok::Bang {
            let (_, column) = self.bump();
            self.deeper()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Not {
                inner: Box::new(inner),
                column,
            });
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Ast, At> {
        let lhs = self.masked()?;
        if let Tok::Cmp(op) = *self.peek() {
            let (_, column) = self.bump();
            let rhs = self.masked()?;
            if let Tok::Cmp(_) = self.peek() {
                return Err(At::new(
                    self.column(),
                    "comparisons do not chain; join them with `&&`",
                ));
            }
            return Ok(Ast::Cmp {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                column,
            });
        }
        Ok(lhs)
    }

    fn masked(&mut self) -> Result<Ast, At> {
        let mut lhs = self.operand()?;
        while self.peek() == &Tok::Amp {
            let (_, column) = self.bump();
            let rhs = self.operand()?;
            lhs = Ast::Mask {
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                column,
            };
        }
        Ok(lhs)
    }

    fn operand(&mut self) -> Result<Ast, At> {
        let (tok, column) = self.bump();
        match tok {
            Tok::Num(value) => Ok(Ast::Num { value, column }),
            Tok::Minus => match self.bump() {
                (Tok::Num(n), _) => Ok(Ast::Num {
                    value: (n as i64).wrapping_neg() as u64,
                    column,
                }),
                (other, c) => Err(At::new(
                    c,
                    format!("expected a number after `-`, found {}", describe(&other)),
                )),
            },
            Tok::LParen => {
                self.deeper()?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.bump() {
                    (Tok::RParen, _) => Ok(inner),
                    (other, c) => Err(At::new(
                        c,
                        format!(
                            "expected `)` closing the `(` of column {column}, found {}",
                            describe(&other)
                        ),
                    )),
                }
            }
            Tok::Ident(root) => self.chain(root, column),
            other => Err(At::new(
                column,
                format!(
                    "expected a member chain (e.g. skb->mark), a number or `(`, found {}",
                    describe(&other)
                ),
            )),
        }
    }

    fn chain(&mut self, root: String, column: usize) -> Result<Ast, At> {
        let mut links = Vec::new();
        loop {
            match self.peek() {
                Tok::Arrow | Tok::Dot => {
                    let (tok, _) = self.bump();
                    match self.bump() {
                        (Tok::Ident(name), column) => links.push(Link::Member {
                            name,
                            arrow: tok == Tok::Arrow,
                            column,
                        }),
                        (other, c) => {
                            return Err(At::new(
                                c,
                                format!("expected a member name, found {}", describe(&other)),
                            ))
                        }
                    }
                }
                Tok::LBracket => {
                    let (_, column) = self.bump();
                    let index = match self.bump() {
                        (Tok::Num(n), _) => n,
                        (other, c) => {
                            return Err(At::new(
                                c,
                                format!(
                                    "array indexes are constant numbers, found {}",
                                    describe(&other)
                                ),
                            ))
                        }
                    };
                    match self.bump() {
                        (Tok::RBracket, _) => {}
                        (other, c) => {
                            return Err(At::new(
                                c,
                                format!("expected `]`, found {}", describe(&other)),
                            ))
                        }
                    }
                    links.push(Link::Index { index, column });
                }
                _ => break,
            }
        }
        Ok(Ast::Chain {
            root,
            links,
            column,
        })
    }
}

//! The one error of the expression compiler: what is wrong, where (a column), what to do.

/// An skb/xdp expression that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression {expr:?}, column {column}: {message}")]
pub struct ExprError {
    /// The whole expression.
    pub expr: String,
    /// 1-based column (in characters) of the token at fault.
    pub column: usize,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// An error at `column` without the expression text (the parser adds it at the top).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At {
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl At {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> At {
        At {
            column,
            message: message.into(),
        }
    }

    pub(crate) fn in_expr(self, expr: &str) -> ExprError {
        ExprError {
            expr: expr.to_string(),
            column: self.column,
            message: self.message,
        }
    }
}

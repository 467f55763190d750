//! Code shared by the example programs (`pwru`, `drops`); not part of pwru-core's API.

pub mod signals;
pub mod sys;

//! pwru-core: the Tracer library.
#![deny(missing_docs)]

pub mod btf;
pub mod discovery;
pub mod event;
pub mod format;
pub mod netns;
pub mod symbols;

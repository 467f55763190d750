//! pwru-core: the Tracer library.
pub mod loader;

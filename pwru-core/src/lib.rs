//! pwru-core: the Tracer library.

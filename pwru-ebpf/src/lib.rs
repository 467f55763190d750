//! Kernel programs of pwru-rs.

//! Helpers shared by the integration tests.

pub mod capabilities;
pub mod packet_socket;

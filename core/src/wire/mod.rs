//! What travels between nodes: the signed envelope, its limits, and the replay window.

pub mod envelope;
pub mod replay;

pub use envelope::{decode, encode, Destination, Header, MessageId, NetworkTag, Received};

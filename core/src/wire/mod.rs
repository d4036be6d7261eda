//! What travels between nodes: the signed envelope, its limits, the replay window, and a relay's memory of
//! the frames it passed on.

pub mod envelope;
pub mod recent;
pub mod replay;

pub use envelope::{decode, encode, Destination, Header, MessageId, NetworkTag, Received};

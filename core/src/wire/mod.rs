//! What travels between nodes: the signed envelope, its limits, and the replay window.

pub mod replay;

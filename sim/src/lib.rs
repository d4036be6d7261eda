//! chordial-sim: drives many real `chordial_core::node::Node`s over an in-memory network on a virtual clock.

//! Who a node is: its session key, the wallet that delegated to it, and how others check that.
//!
//! - [`session`]: the node's secp256k1 session key, node id, signatures.
//! - [`address`]: Ethereum addresses, keccak-256, EIP-55.
//! - [`wallet`]: a local wallet key (tests, the demo, servers' self-delegation) and EIP-191 recovery.
//! - [`did`]: `did:key` for session keys.
//! - [`siwe`]: strict EIP-4361 message building and parsing.
//! - [`delegation`]: the one signature — building, verifying and caching a wallet's grant to a session.

pub mod address;
pub mod delegation;
pub mod did;
pub mod session;
pub mod siwe;
pub mod wallet;

pub use address::Address;
pub use delegation::{Delegation, DelegationCache, DelegationError, DelegationRequest, VerifiedDelegation};
pub use session::{BadSignature, KeyError, SessionKey, SessionPublicKey, Signature};
pub use wallet::{WalletKey, WalletSignature};

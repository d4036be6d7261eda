//! The one signature: a wallet's grant to a session key, as a signed SIWE message.
//!
//! ```text
//!   node: SessionKey ──did:key──▶ delegation_message(session, request, now, rng) ──▶ SiweMessage text
//!   wallet: personal_sign(text) ──▶ Delegation { message, signature }
//!   any node: Delegation::verify(network, now) ──▶ VerifiedDelegation { wallet, session, expires, … }
//!                   └─ DelegationCache: by hash, so a delegation is parsed and recovered once per node
//! ```
//!
//! What is checked, in this order (cheap checks first, the signature recovery last):
//! 1. the text parses as a strict EIP-4361 message ([`SiweMessage::parse`]);
//! 2. the statement is exactly [`DELEGATION_STATEMENT`], so the wallet showed the user what is granted;
//! 3. the `URI` is a session key's `did:key`;
//! 4. `Resources` is exactly one `urn:chordial:network:<id>` and the id is the verifier's network;
//! 5. there is an `Expiration Time`, after the start of validity, at most [`MAX_DELEGATION_LIFETIME`] after
//!    `Issued At`;
//! 6. `now + CLOCK_SKEW` is not before `Issued At` or `Not Before`, and `now` is before `Expiration Time`;
//! 7. the signer recovered from the EIP-191 signature is the address line.
//!
//! `Domain`, `Chain ID`, `Nonce` and `Request ID` are informational: the verifier has no session with the
//! page that asked, and the delegation is not bound to a chain. Only externally owned accounts can
//! delegate: contract wallets (EIP-1271) would need a chain to ask, and the core verifies offline.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::address::{keccak256, Address};
use super::did::{did_key, parse_did_key, DidError};
use super::session::SessionPublicKey;
use super::siwe::{SiweError, SiweMessage, MAX_MESSAGE_LEN};
use super::wallet::{RecoverError, WalletKey, WalletSignature};
use crate::crypto::{Crypto, CryptoRef};
use crate::time::Timestamp;

/// How long a delegation lasts unless the request says otherwise: 30 days.
pub const DEFAULT_DELEGATION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest `Expiration Time − Issued At` a verifier accepts: 366 days.
pub const MAX_DELEGATION_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// How far ahead of the verifier's clock a delegation's start may be and still be accepted: 5 minutes.
/// Expiry gets no grace: a delegation is refused from its `Expiration Time` on.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// The statement every Chordial delegation carries, word for word. Changing it is a protocol change: old
/// verifiers refuse the new text.
pub const DELEGATION_STATEMENT: &str = "Chordial: let this device's Chordial node (session key in the URI) \
publish your presence, join topics, and send and receive end-to-end encrypted messages as this address \
until the expiration time. It cannot sign transactions or move funds.";
/// The one `Resources` entry is this prefix followed by the network id.
pub const NETWORK_RESOURCE_PREFIX: &str = "urn:chordial:network:";

const NONCE_LEN: usize = 16;
const NONCE_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Domain separation for [`Delegation::hash`].
const HASH_TAG: &[u8] = b"chordial/delegation/v1";

/// Most delegation hashes [`Delegation::hash`] remembers per thread; when full, the memo starts again empty.
const HASH_MEMO_CAP: usize = 1 << 14;

thread_local! {
    /// [`Delegation::hash`] of the delegations this thread hashed, by signature (`r ‖ s ‖ v` with `v` as
    /// 27/28), each with the exact text it signs: a hit needs the same signature **and** the same text, the
    /// two things the hash covers, so the memo answers exactly what hashing would. Keccak-256 of the SIWE
    /// text was ~3 % of a simulated ring's time (twice per presence record checked: once for its signed
    /// bytes, once as the delegation cache's key). A text signed by a signature already in the memo with
    /// another text replaces it.
    static HASHES: RefCell<HashMemo> = RefCell::new(HashMap::new());
}

/// Signature (`v` canonical) → the text it signs and the delegation's hash.
type HashMemo = HashMap<[u8; 65], (Box<str>, [u8; 32])>;

/// What the node asks the wallet to grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRequest {
    /// The page where the user signs (RFC 3986 host[:port], no scheme), shown by the wallet.
    pub domain: String,
    /// The wallet address that will sign.
    pub address: Address,
    /// The wallet's current EIP-155 chain id (informational; verification ignores it).
    pub chain_id: u64,
    /// The network id, as in [`NETWORK_RESOURCE_PREFIX`]; URI characters only (e.g. `main`).
    pub network: String,
    /// From `Issued At` to `Expiration Time`; at most [`MAX_DELEGATION_LIFETIME`] or verifiers refuse it.
    pub lifetime: Duration,
}

impl DelegationRequest {
    /// A request with the [`DEFAULT_DELEGATION_LIFETIME`].
    pub fn new(
        domain: impl Into<String>,
        address: Address,
        chain_id: u64,
        network: impl Into<String>,
    ) -> Self {
        DelegationRequest {
            domain: domain.into(),
            address,
            chain_id,
            network: network.into(),
            lifetime: DEFAULT_DELEGATION_LIFETIME,
        }
    }
}

/// The SIWE message that delegates to `session`: show its `to_string()` to the wallet for `personal_sign`.
pub fn delegation_message(
    session: &SessionPublicKey,
    req: &DelegationRequest,
    now: Timestamp,
    rng: &mut impl CryptoRngCore,
) -> SiweMessage {
    SiweMessage {
        domain: req.domain.clone(),
        address: req.address,
        statement: Some(DELEGATION_STATEMENT.to_owned()),
        uri: did_key(session),
        version: "1".to_owned(),
        chain_id: req.chain_id,
        nonce: random_nonce(rng),
        issued_at: now,
        expiration_time: Some(now.saturating_add(req.lifetime)),
        not_before: None,
        request_id: None,
        resources: vec![format!("{NETWORK_RESOURCE_PREFIX}{}", req.network)],
    }
}

/// 16 characters drawn uniformly from `[0-9A-Za-z]` (~95 bits).
fn random_nonce(rng: &mut impl CryptoRngCore) -> String {
    let mut out = String::with_capacity(NONCE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < NONCE_LEN {
        rng.fill_bytes(&mut buf);
        // Rejection sampling: 248 = 4 × 62, so accepted bytes map uniformly onto the alphabet.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == NONCE_LEN {
                break;
            }
            out.push(char::from(NONCE_ALPHABET[usize::from(*b % 62)]));
        }
    }
    out
}

/// Why a delegation was refused. Every variant but the last is about the delegation itself (peer input);
/// [`DelegationError::WrongSession`] is about whom it was presented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    /// The message is not a well-formed EIP-4361 message.
    #[error("malformed SIWE message: {0}")]
    Malformed(SiweError),
    /// The statement is not [`DELEGATION_STATEMENT`]: the wallet did not show the Chordial grant.
    #[error("not a Chordial delegation statement")]
    WrongStatement,
    /// The `URI` is not a session key's `did:key`.
    #[error("URI is not a session key: {0}")]
    BadUri(DidError),
    /// `Resources` is not exactly one `urn:chordial:network:…` entry.
    #[error("resources must be exactly one Chordial network")]
    BadResources,
    /// The delegation is for another network.
    #[error("delegation is for another network")]
    WrongNetwork,
    /// There is no `Expiration Time`: Chordial delegations must expire.
    #[error("delegation has no expiration time")]
    MissingExpiration,
    /// `Expiration Time` is not after `Issued At` / `Not Before`.
    #[error("delegation expires before it starts")]
    InvalidWindow,
    /// `Expiration Time − Issued At` exceeds [`MAX_DELEGATION_LIFETIME`].
    #[error("delegation lifetime too long")]
    LifetimeTooLong,
    /// `Issued At` or `Not Before` is more than [`CLOCK_SKEW`] ahead of now.
    #[error("delegation not yet valid")]
    NotYetValid,
    /// Now is at or after `Expiration Time`.
    #[error("delegation expired")]
    Expired,
    /// The signature bytes are not a usable recoverable signature (bad `v`, high `s`, out-of-range scalars).
    #[error("bad wallet signature: {0}")]
    BadSignature(RecoverError),
    /// The signature is valid but was made by another address than the address line (or over other text).
    #[error("signed by another address")]
    WrongSigner,
    /// The delegation is valid but names another session key than the one it was presented for.
    #[error("delegation is for another session key")]
    WrongSession,
}

/// A wallet's signed grant: the exact SIWE text and the `personal_sign` signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// The EIP-4361 text, byte for byte as signed.
    pub message: String,
    /// The wallet's EIP-191 signature of `message`.
    pub signature: WalletSignature,
}

impl Delegation {
    /// Signs `message` with a local wallet (tests, the demo, servers delegating to themselves).
    pub fn sign(message: &SiweMessage, wallet: &WalletKey) -> Delegation {
        Self::sign_with(&crate::crypto::REAL, message, wallet)
    }

    /// [`Delegation::sign`] through `crypto` (a simulator's identities sign with the provider its nodes
    /// verify with).
    pub fn sign_with(crypto: &dyn Crypto, message: &SiweMessage, wallet: &WalletKey) -> Delegation {
        let message = message.to_string();
        let signature = crypto.personal_sign(wallet, message.as_bytes());
        Delegation { message, signature }
    }

    /// `keccak256("chordial/delegation/v1" ‖ u64-BE len(message) ‖ message ‖ r ‖ s ‖ v)` with `v` as 27/28:
    /// the cache key and the way other records refer to a delegation. The two spellings of `v` hash alike.
    ///
    /// A thread remembers the hashes of the delegations it hashed last (see [`HASHES`]): every record
    /// carries one and is checked against it, so the same few hundred texts are hashed again and again.
    pub fn hash(&self) -> [u8; 32] {
        let mut sig = [0u8; 65];
        sig[..64].copy_from_slice(&self.signature.0[..64]);
        sig[64] = self.signature.canonical_v();
        let known = HASHES.with(|memo| {
            memo.borrow().get(&sig).filter(|(text, _)| **text == *self.message).map(|(_, hash)| *hash)
        });
        if let Some(hash) = known {
            return hash;
        }
        let hash = self.hash_uncached();
        HASHES.with(|memo| {
            let mut memo = memo.borrow_mut();
            if memo.len() >= HASH_MEMO_CAP {
                memo.clear();
            }
            memo.insert(sig, (self.message.as_str().into(), hash));
        });
        hash
    }

    fn hash_uncached(&self) -> [u8; 32] {
        let mut buf = Vec::with_capacity(HASH_TAG.len() + 8 + self.message.len() + 65);
        buf.extend_from_slice(HASH_TAG);
        buf.extend_from_slice(&(self.message.len() as u64).to_be_bytes());
        buf.extend_from_slice(self.message.as_bytes());
        buf.extend_from_slice(&self.signature.0[..64]);
        buf.push(self.signature.canonical_v());
        keccak256(&buf)
    }

    /// The `Expiration Time` line as the text states it, read without parsing or verifying the rest: what
    /// a store uses to bound how long it keeps a record that carries this delegation (the record was
    /// verified when it was stored; a text without the line, or with one that does not parse, gives
    /// `None`).
    pub fn stated_expiry(&self) -> Option<Timestamp> {
        let line = self.message.lines().find_map(|l| l.strip_prefix("Expiration Time: "))?;
        super::siwe::parse_rfc3339(line)
    }

    /// Verifies everything listed in the module docs, for `network` at time `now`.
    pub fn verify(&self, network: &str, now: Timestamp) -> Result<VerifiedDelegation, DelegationError> {
        self.verify_with(&crate::crypto::REAL, network, now)
    }

    /// [`Delegation::verify`], recovering the wallet signature through `crypto`.
    pub fn verify_with(
        &self,
        crypto: &dyn Crypto,
        network: &str,
        now: Timestamp,
    ) -> Result<VerifiedDelegation, DelegationError> {
        let verified = self.check_fields(network)?;
        verified.check_time(now)?;
        let signer = crypto
            .recover_personal_sign(self.message.as_bytes(), &self.signature)
            .map_err(DelegationError::BadSignature)?;
        if signer != verified.wallet {
            return Err(DelegationError::WrongSigner);
        }
        Ok(verified)
    }

    /// [`Delegation::verify`], and the delegation must name `session` (the key that presented it).
    pub fn verify_for(
        &self,
        session: &SessionPublicKey,
        network: &str,
        now: Timestamp,
    ) -> Result<VerifiedDelegation, DelegationError> {
        let verified = self.verify(network, now)?;
        if verified.session != *session {
            return Err(DelegationError::WrongSession);
        }
        Ok(verified)
    }

    /// Steps 1–5: everything that does not depend on `now` or on the signature.
    fn check_fields(&self, network: &str) -> Result<VerifiedDelegation, DelegationError> {
        let msg = SiweMessage::parse(&self.message).map_err(DelegationError::Malformed)?;
        if msg.statement.as_deref() != Some(DELEGATION_STATEMENT) {
            return Err(DelegationError::WrongStatement);
        }
        let session = parse_did_key(&msg.uri).map_err(DelegationError::BadUri)?;
        let resource_network = match msg.resources.as_slice() {
            [one] => one.strip_prefix(NETWORK_RESOURCE_PREFIX).ok_or(DelegationError::BadResources)?,
            _ => return Err(DelegationError::BadResources),
        };
        if resource_network != network {
            return Err(DelegationError::WrongNetwork);
        }
        let expires = msg.expiration_time.ok_or(DelegationError::MissingExpiration)?;
        let not_before = msg.not_before.map_or(msg.issued_at, |nb| nb.max(msg.issued_at));
        if expires <= not_before {
            return Err(DelegationError::InvalidWindow);
        }
        if expires.since(msg.issued_at) > MAX_DELEGATION_LIFETIME {
            return Err(DelegationError::LifetimeTooLong);
        }
        Ok(VerifiedDelegation {
            wallet: msg.address,
            session,
            network: network.to_owned(),
            issued_at: msg.issued_at,
            not_before,
            expires,
            hash: self.hash(),
        })
    }
}

/// What a valid delegation says. Only [`Delegation::verify`] and [`DelegationCache`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelegation {
    /// The wallet that signed.
    pub wallet: Address,
    /// The session key it authorises.
    pub session: SessionPublicKey,
    /// The network it is for.
    pub network: String,
    /// Its `Issued At`.
    pub issued_at: Timestamp,
    /// Start of validity: the later of `Issued At` and `Not Before`.
    pub not_before: Timestamp,
    /// Its `Expiration Time`; invalid from this instant on.
    pub expires: Timestamp,
    /// [`Delegation::hash`] of the delegation.
    pub hash: [u8; 32],
}

impl VerifiedDelegation {
    /// Whether the delegation is valid at `now`, allowing [`CLOCK_SKEW`] before its start (none at expiry).
    /// Records that carry a verified delegation call this again whenever they are used.
    pub fn check_time(&self, now: Timestamp) -> Result<(), DelegationError> {
        if now.saturating_add(CLOCK_SKEW) < self.not_before {
            return Err(DelegationError::NotYetValid);
        }
        if now >= self.expires {
            return Err(DelegationError::Expired);
        }
        Ok(())
    }
}

/// Verified delegations by [`Delegation::hash`], so a node parses and recovers each delegation once.
///
/// Bounded: at most `capacity` entries, the least recently used evicted first. A hit skips parsing and
/// signature recovery but still checks the network and the time window against `now`; an entry found
/// expired is dropped.
///
/// Final failures are remembered too, in a second, smaller table that forgets the oldest when full
/// ([`REFUSED_CAPACITY`]): a delegation refused for what it says or how it is signed (malformed, wrong
/// statement, network or signer, bad signature, …) is refused again from there, so a peer that repeats one
/// costs one verification, not one per message. Failures that depend on `now` (`NotYetValid`, `Expired`)
/// are never remembered: the first may pass later, and the second costs no signature recovery anyway. An
/// attacker who fills this table with junk only pushes out earlier junk, which then costs one more
/// verification: it never refuses a valid delegation (the key is the hash of the exact text and signature)
/// and never grows past its bound.
///
/// Entries are kept compact (the session key as its 33 bytes, no index by last use): a node holds one
/// per peer and record owner it has met. Finding the least recently used entry scans the table, which
/// happens only when it is full and a new delegation was just verified (a full verification costs more
/// than the scan); [`DelegationCache::prune`] visits the table only once an entry may have expired.
#[derive(Debug)]
pub struct DelegationCache {
    capacity: usize,
    crypto: CryptoRef,
    entries: HashMap<[u8; 32], Entry>,
    tick: u64,
    hits: u64,
    misses: u64,
    /// No entry expires before this instant (a lower bound: exact after a prune, lowered by inserts); `None`
    /// when the cache is empty.
    first_expiry: Option<Timestamp>,
    /// Delegations refused for good, with the network they were checked for and why.
    refused: HashMap<[u8; 32], (Box<str>, DelegationError)>,
    /// The same hashes, oldest first.
    refused_order: VecDeque<[u8; 32]>,
    refused_hits: u64,
}

/// Final refusals a [`DelegationCache`] remembers (the oldest forgotten first).
pub const REFUSED_CAPACITY: usize = 1024;

/// Whether a refusal holds whatever the time: such refusals are remembered by the cache.
fn is_final(e: &DelegationError) -> bool {
    !matches!(e, DelegationError::NotYetValid | DelegationError::Expired)
}

/// A [`VerifiedDelegation`] without its hash (the map's key), and its last use.
#[derive(Debug)]
struct Entry {
    wallet: Address,
    /// A key that was checked to be a point when the delegation was verified.
    session: [u8; 33],
    network: Box<str>,
    issued_at: Timestamp,
    not_before: Timestamp,
    expires: Timestamp,
    last_use: u64,
}

impl Entry {
    fn new(v: &VerifiedDelegation, last_use: u64) -> Self {
        Entry {
            wallet: v.wallet,
            session: *v.session.as_bytes(),
            network: v.network.as_str().into(),
            issued_at: v.issued_at,
            not_before: v.not_before,
            expires: v.expires,
            last_use,
        }
    }

    fn verified(&self, hash: [u8; 32]) -> VerifiedDelegation {
        VerifiedDelegation {
            wallet: self.wallet,
            session: SessionPublicKey::known_valid(&self.session),
            network: self.network.to_string(),
            issued_at: self.issued_at,
            not_before: self.not_before,
            expires: self.expires,
            hash,
        }
    }
}

impl DelegationCache {
    /// An empty cache holding at most `capacity` delegations (0 disables caching), verifying with real
    /// cryptography.
    pub fn new(capacity: usize) -> Self {
        Self::with_crypto(capacity, &crate::crypto::REAL)
    }

    /// An empty cache that verifies through `crypto`; [`DelegationCache::crypto`] lends the same provider
    /// to the checks that go with a delegation (record and message signatures).
    pub fn with_crypto(capacity: usize, crypto: CryptoRef) -> Self {
        DelegationCache {
            capacity,
            crypto,
            entries: HashMap::new(),
            tick: 0,
            hits: 0,
            misses: 0,
            first_expiry: None,
            refused: HashMap::new(),
            refused_order: VecDeque::new(),
            refused_hits: 0,
        }
    }

    /// The provider this cache verifies with.
    pub fn crypto(&self) -> CryptoRef {
        self.crypto
    }

    /// [`Delegation::verify`], answered from the cache when this delegation was verified before.
    pub fn verify(
        &mut self,
        d: &Delegation,
        network: &str,
        now: Timestamp,
    ) -> Result<VerifiedDelegation, DelegationError> {
        // Refuse oversize text before hashing it: the bound of the parser applies to the cache key too.
        if d.message.len() > MAX_MESSAGE_LEN {
            return Err(DelegationError::Malformed(SiweError::TooLong));
        }
        let hash = d.hash();
        self.tick += 1;
        if let Some(entry) = self.entries.get_mut(&hash) {
            self.hits += 1;
            entry.last_use = self.tick;
            if *entry.network != *network {
                return Err(DelegationError::WrongNetwork);
            }
            let verified = entry.verified(hash);
            return match verified.check_time(now) {
                Ok(()) => Ok(verified),
                Err(DelegationError::Expired) => {
                    self.entries.remove(&hash);
                    Err(DelegationError::Expired)
                }
                Err(e) => Err(e),
            };
        }
        if let Some((net, error)) = self.refused.get(&hash) {
            if **net == *network {
                self.refused_hits += 1;
                return Err(*error);
            }
        }
        self.misses += 1;
        let verified = match d.verify_with(self.crypto, network, now) {
            Ok(v) => v,
            Err(e) => {
                if is_final(&e) {
                    self.remember_refused(hash, network, &e);
                }
                return Err(e);
            }
        };
        if self.capacity > 0 {
            while self.entries.len() >= self.capacity {
                let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.last_use).map(|(h, _)| *h)
                else {
                    break;
                };
                self.entries.remove(&oldest);
            }
            self.first_expiry = Some(self.first_expiry.map_or(verified.expires, |f| f.min(verified.expires)));
            self.entries.insert(hash, Entry::new(&verified, self.tick));
        }
        Ok(verified)
    }

    fn remember_refused(&mut self, hash: [u8; 32], network: &str, error: &DelegationError) {
        if self.refused.insert(hash, (network.into(), *error)).is_none() {
            self.refused_order.push_back(hash);
        }
        while self.refused_order.len() > REFUSED_CAPACITY {
            if let Some(oldest) = self.refused_order.pop_front() {
                self.refused.remove(&oldest);
            }
        }
    }

    /// Lookups answered "refused" from the table of final refusals (no verification).
    pub fn refused_hits(&self) -> u64 {
        self.refused_hits
    }

    /// Final refusals remembered.
    pub fn refused_len(&self) -> usize {
        self.refused.len()
    }

    /// Drops every entry that has expired at `now`.
    pub fn prune(&mut self, now: Timestamp) {
        if self.first_expiry.is_none_or(|f| now < f) {
            return;
        }
        self.entries.retain(|_, e| now < e.expires);
        self.first_expiry = self.entries.values().map(|e| e.expires).min();
    }

    /// Number of cached delegations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lookups answered from the cache (including hits that then failed the network or time check).
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that needed a full verification.
    pub fn misses(&self) -> u64 {
        self.misses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::siwe::format_rfc3339;
    use crate::identity::SessionKey;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const NET: &str = "test";
    const DAY: Duration = Duration::from_secs(86_400);
    /// 2026-03-01T12:00:00Z.
    const NOW: Timestamp = Timestamp(1_772_366_400_000);

    struct Fixture {
        wallet: WalletKey,
        session: SessionKey,
        message: SiweMessage,
    }

    fn fixture(seed: u64) -> Fixture {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let wallet = WalletKey::generate(&mut rng);
        let session = SessionKey::generate(&mut rng);
        let req = DelegationRequest::new("app.example.org", wallet.address(), 1, NET);
        let message = delegation_message(session.public(), &req, NOW, &mut rng);
        Fixture { wallet, session, message }
    }

    impl Fixture {
        fn signed(&self) -> Delegation {
            Delegation::sign(&self.message, &self.wallet)
        }
        fn signed_with(&self, edit: impl FnOnce(&mut SiweMessage)) -> Delegation {
            let mut m = self.message.clone();
            edit(&mut m);
            Delegation::sign(&m, &self.wallet)
        }
    }

    #[test]
    fn message_layout() {
        let f = fixture(1);
        let text = f.message.to_string();
        assert!(text.starts_with("app.example.org wants you to sign in with your Ethereum account:\n"));
        assert!(text.contains(&format!("\n\n{DELEGATION_STATEMENT}\n\nURI: did:key:zQ3s")));
        assert!(text.contains(&format!("\nIssued At: {}\n", format_rfc3339(NOW))));
        assert!(text.contains("\nExpiration Time: 2026-03-31T12:00:00.000Z\n"));
        assert!(text.ends_with("\nResources:\n- urn:chordial:network:test"));
        assert_eq!(f.message.nonce.len(), NONCE_LEN);
        assert!(f.message.nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(SiweMessage::parse(&text).as_ref(), Ok(&f.message));
        // Deterministic for a seed, different across seeds.
        assert_eq!(fixture(1).message, f.message);
        assert_ne!(fixture(2).message.nonce, f.message.nonce);
    }

    #[test]
    fn verifies() {
        let f = fixture(1);
        let d = f.signed();
        let v = d.verify(NET, NOW).unwrap();
        assert_eq!(v.wallet, f.wallet.address());
        assert_eq!(v.session, *f.session.public());
        assert_eq!(v.network, NET);
        assert_eq!(v.issued_at, NOW);
        assert_eq!(v.not_before, NOW);
        assert_eq!(v.expires, NOW.saturating_add(DEFAULT_DELEGATION_LIFETIME));
        assert_eq!(v.hash, d.hash());
        assert_eq!(d.verify_for(f.session.public(), NET, NOW), Ok(v));
        let other = SessionKey::generate(&mut ChaCha20Rng::seed_from_u64(99));
        assert_eq!(d.verify_for(other.public(), NET, NOW), Err(DelegationError::WrongSession));
        // Serde round trip keeps it verifiable.
        let bytes = postcard::to_allocvec(&d).unwrap();
        assert_eq!(postcard::from_bytes::<Delegation>(&bytes).unwrap(), d);
    }

    #[test]
    fn time_window() {
        let f = fixture(1);
        let d = f.signed();
        let expires = NOW.saturating_add(DEFAULT_DELEGATION_LIFETIME);
        assert!(d.verify(NET, NOW.saturating_sub(CLOCK_SKEW)).is_ok());
        let too_early = NOW.saturating_sub(CLOCK_SKEW).saturating_sub(Duration::from_millis(1));
        assert_eq!(d.verify(NET, too_early), Err(DelegationError::NotYetValid));
        assert!(d.verify(NET, Timestamp(expires.0 - 1)).is_ok());
        assert_eq!(d.verify(NET, expires), Err(DelegationError::Expired));
        // Not Before later than Issued At moves the start.
        let nb = NOW.saturating_add(DAY);
        let d = f.signed_with(|m| m.not_before = Some(nb));
        assert_eq!(d.verify(NET, NOW), Err(DelegationError::NotYetValid));
        assert_eq!(d.verify(NET, nb).map(|v| v.not_before), Ok(nb));
        let d = f.signed_with(|m| m.expiration_time = Some(NOW));
        assert_eq!(d.verify(NET, NOW), Err(DelegationError::InvalidWindow));
        let d = f.signed_with(|m| m.expiration_time = None);
        assert_eq!(d.verify(NET, NOW), Err(DelegationError::MissingExpiration));
        let d = f.signed_with(|m| m.expiration_time = Some(NOW.saturating_add(MAX_DELEGATION_LIFETIME)));
        assert!(d.verify(NET, NOW).is_ok());
        let too_long = NOW.saturating_add(MAX_DELEGATION_LIFETIME + Duration::from_millis(1));
        let d = f.signed_with(|m| m.expiration_time = Some(too_long));
        assert_eq!(d.verify(NET, NOW), Err(DelegationError::LifetimeTooLong));
    }

    #[test]
    fn field_errors() {
        let f = fixture(1);
        let d = f.signed();
        assert_eq!(d.verify("main", NOW), Err(DelegationError::WrongNetwork));
        let check = |edit: fn(&mut SiweMessage), want: DelegationError| {
            assert_eq!(f.signed_with(edit).verify(NET, NOW), Err(want));
        };
        check(|m| m.statement = None, DelegationError::WrongStatement);
        check(|m| m.statement = Some("Sign in to example.".into()), DelegationError::WrongStatement);
        check(|m| m.uri = "https://app.example.org".into(), DelegationError::BadUri(DidError::NotDidKey));
        check(|m| m.resources.clear(), DelegationError::BadResources);
        check(|m| m.resources.push("urn:chordial:network:test".into()), DelegationError::BadResources);
        check(|m| m.resources = vec!["urn:other:test".into()], DelegationError::BadResources);
        check(|m| m.resources = vec!["urn:chordial:network:tests".into()], DelegationError::WrongNetwork);
        check(|m| m.version = "2".into(), DelegationError::Malformed(SiweError::BadVersion));
        // Signed by another wallet than the address line.
        let mut m = f.message.clone();
        m.address = Address([7; 20]);
        assert_eq!(Delegation::sign(&m, &f.wallet).verify(NET, NOW), Err(DelegationError::WrongSigner));
        // Signature bytes unusable.
        let mut bad = d.clone();
        bad.signature.0[64] = 30;
        assert_eq!(bad.verify(NET, NOW), Err(DelegationError::BadSignature(RecoverError::BadV(30))));
        // Tampered text, original signature.
        let mut tampered = d.clone();
        tampered.message = tampered.message.replace(&f.message.nonce, "AAAAAAAAAAAAAAAA");
        assert_eq!(tampered.verify(NET, NOW), Err(DelegationError::WrongSigner));
    }

    #[test]
    fn hash_ignores_v_spelling_only() {
        let d = fixture(1).signed();
        let mut zero_v = d.clone();
        zero_v.signature.0[64] -= 27;
        assert_eq!(zero_v.hash(), d.hash());
        assert_eq!(zero_v.verify(NET, NOW).map(|v| v.wallet), d.verify(NET, NOW).map(|v| v.wallet));
        let mut other = d.clone();
        other.message.push(' ');
        assert_ne!(other.hash(), d.hash());
        assert_ne!(fixture(2).signed().hash(), d.hash());
    }

    #[test]
    fn cache_hits_rechecks_and_evicts() {
        let mut cache = DelegationCache::new(2);
        let (a, b, c) = (fixture(1).signed(), fixture(2).signed(), fixture(3).signed());
        let va = cache.verify(&a, NET, NOW).unwrap();
        assert_eq!((cache.len(), cache.hits(), cache.misses()), (1, 0, 1));
        assert_eq!(cache.verify(&a, NET, NOW), Ok(va.clone()));
        assert_eq!((cache.len(), cache.hits(), cache.misses()), (1, 1, 1));
        // A hit still checks the network and the time.
        assert_eq!(cache.verify(&a, "main", NOW), Err(DelegationError::WrongNetwork));
        let early = NOW.saturating_sub(DAY);
        assert_eq!(cache.verify(&a, NET, early), Err(DelegationError::NotYetValid));
        assert_eq!(cache.len(), 1);
        // Fill: b then a (a is now most recent), then c evicts b.
        cache.verify(&b, NET, NOW).unwrap();
        cache.verify(&a, NET, NOW).unwrap();
        cache.verify(&c, NET, NOW).unwrap();
        assert_eq!(cache.len(), 2);
        let misses = cache.misses();
        cache.verify(&a, NET, NOW).unwrap();
        assert_eq!(cache.misses(), misses, "a stayed");
        cache.verify(&b, NET, NOW).unwrap();
        assert_eq!(cache.misses(), misses + 1, "b was evicted");
        assert_eq!(cache.len(), 2);
        // An expired hit is refused and dropped.
        assert_eq!(cache.verify(&a, NET, va.expires), Err(DelegationError::Expired));
        assert_eq!(cache.len(), 1);
        // Failures do not enter the table of valid delegations.
        let mut bad = c.clone();
        bad.signature.0[64] = 30;
        assert!(cache.verify(&bad, NET, NOW).is_err());
        assert!(cache.verify(&bad, NET, NOW).is_err());
        assert_eq!(cache.len(), 1);
        cache.prune(va.expires);
        assert!(cache.is_empty());
        // Oversize text is refused before hashing and counted as neither hit nor miss.
        let huge = Delegation { message: "x".repeat(MAX_MESSAGE_LEN + 1), signature: a.signature };
        assert_eq!(cache.verify(&huge, NET, NOW), Err(DelegationError::Malformed(SiweError::TooLong)));
        // Capacity 0 caches nothing but still verifies.
        let mut none = DelegationCache::new(0);
        assert!(none.verify(&a, NET, NOW).is_ok());
        assert_eq!(none.len(), 0);
    }

    #[test]
    fn a_final_refusal_costs_one_verification_and_the_table_forgets_the_oldest() {
        let mut cache = DelegationCache::new(4);
        let f = fixture(1);
        let mut bad = f.signed();
        bad.message = bad.message.replace(&f.message.nonce, "AAAAAAAAAAAAAAAA");
        assert_eq!(cache.verify(&bad, NET, NOW), Err(DelegationError::WrongSigner));
        assert_eq!((cache.misses(), cache.refused_hits(), cache.refused_len()), (1, 0, 1));
        for _ in 0..3 {
            assert_eq!(cache.verify(&bad, NET, NOW), Err(DelegationError::WrongSigner));
        }
        assert_eq!((cache.misses(), cache.refused_hits()), (1, 3), "answered without verifying");
        // Checked for another network, it is verified afresh (a refusal is remembered per network).
        assert_eq!(cache.verify(&bad, "main", NOW), Err(DelegationError::WrongNetwork));
        assert_eq!(cache.misses(), 2);
        // Refusals that depend on the time are not remembered: the same text may pass later.
        let early = f.signed();
        let before = NOW.saturating_sub(DAY);
        assert_eq!(cache.verify(&early, NET, before), Err(DelegationError::NotYetValid));
        assert_eq!(cache.refused_len(), 1);
        assert!(cache.verify(&early, NET, NOW).is_ok());
        // A flood of junk forgets the oldest refusal (which then costs one more check), never grows past
        // the bound, and never refuses a valid delegation.
        for i in 0..(REFUSED_CAPACITY + 10) {
            let mut junk = bad.clone();
            junk.message.push_str(&format!("{i}"));
            assert!(cache.verify(&junk, NET, NOW).is_err());
        }
        assert_eq!(cache.refused_len(), REFUSED_CAPACITY);
        let misses = cache.misses();
        assert_eq!(cache.verify(&bad, NET, NOW), Err(DelegationError::WrongSigner));
        assert_eq!(cache.misses(), misses + 1, "the first refusal was forgotten");
        assert!(cache.verify(&early, NET, NOW).is_ok());
    }

    #[test]
    fn the_stated_expiry_is_read_without_verifying() {
        let f = fixture(1);
        assert_eq!(f.signed().stated_expiry(), Some(NOW.saturating_add(DEFAULT_DELEGATION_LIFETIME)));
        let none = f.signed_with(|m| m.expiration_time = None);
        assert_eq!(none.stated_expiry(), None);
        let junk = Delegation { message: "Expiration Time: soon".into(), signature: f.signed().signature };
        assert_eq!(junk.stated_expiry(), None);
    }

    #[test]
    fn nonce_is_uniformish_alphanumeric() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut seen = [0u32; 62];
        for _ in 0..2000 {
            for b in random_nonce(&mut rng).bytes() {
                seen[NONCE_ALPHABET.iter().position(|c| *c == b).unwrap()] += 1;
            }
        }
        // 32 000 draws over 62 symbols: ~516 each; every symbol appears and none dominates.
        assert!(seen.iter().all(|n| (350..700).contains(n)), "{seen:?}");
    }

    proptest! {
        #[test]
        fn verify_never_panics(message in "\\PC{0,700}", sig in proptest::collection::vec(any::<u8>(), 65)) {
            let mut signature = [0u8; 65];
            signature.copy_from_slice(&sig);
            let d = Delegation { message, signature: WalletSignature(signature) };
            prop_assert!(d.verify(NET, NOW).is_err());
        }

        #[test]
        fn any_edit_of_a_signed_delegation_is_refused(
            pos in any::<prop::sample::Index>(),
            len in 0usize..4,
            insert in "[ -~\n]{0,3}",
        ) {
            let f = fixture(1);
            let d = f.signed();
            let at = pos.index(d.message.len() + 1);
            let end = (at + len).min(d.message.len());
            let edited = format!("{}{}{}", &d.message[..at], insert, &d.message[end..]);
            prop_assume!(edited != d.message);
            let tampered = Delegation { message: edited, signature: d.signature };
            prop_assert!(tampered.verify(NET, NOW).is_err());
        }
    }
}

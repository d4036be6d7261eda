//! 160-bit identifiers on the Chord ring and the modular arithmetic Chord needs.
//!
//! Node ids are `sha1(session public key)`; record keys are `sha1(tag ‖ …)`. Both live on the same circle of
//! 2^160 points, compared clockwise from a start point.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// Number of bits in an [`Id`].
pub const ID_BITS: usize = 160;

/// A point on the ring: 160 bits, big-endian.
///
/// Arithmetic and ordering work on three big-endian limbs (32, 64 and 64 bits) instead of twenty bytes:
/// routing compares and subtracts ids for every link of every hop. The results are those of byte-wise
/// arithmetic and of the bytes' lexicographic order (the tests compare both).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Id(pub [u8; 20]);

impl Ord for Id {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs().cmp(&other.limbs())
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Id {
    /// The zero point.
    pub const ZERO: Id = Id([0; 20]);
    /// The largest point, 2^160 − 1.
    pub const MAX: Id = Id([0xff; 20]);

    /// `sha1(parts[0] ‖ parts[1] ‖ …)`.
    pub fn hash(parts: &[&[u8]]) -> Id {
        let mut h = Sha1::new();
        for p in parts {
            h.update(p);
        }
        Id(h.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The value as big-endian limbs: bytes 0..4, 4..12 and 12..20.
    fn limbs(&self) -> (u32, u64, u64) {
        let b = &self.0;
        (
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
            u64::from_be_bytes([b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19]]),
        )
    }

    fn from_limbs((hi, mid, lo): (u32, u64, u64)) -> Id {
        let mut out = [0u8; 20];
        out[..4].copy_from_slice(&hi.to_be_bytes());
        out[4..12].copy_from_slice(&mid.to_be_bytes());
        out[12..].copy_from_slice(&lo.to_be_bytes());
        Id(out)
    }

    /// `self + other (mod 2^160)`.
    pub fn wrapping_add(self, other: Id) -> Id {
        let ((a2, a1, a0), (b2, b1, b0)) = (self.limbs(), other.limbs());
        let (lo, c0) = a0.overflowing_add(b0);
        let (mid, c1) = a1.overflowing_add(b1);
        let (mid, c1b) = mid.overflowing_add(u64::from(c0));
        let hi = a2.wrapping_add(b2).wrapping_add(u32::from(c1 || c1b));
        Id::from_limbs((hi, mid, lo))
    }

    /// `self - other (mod 2^160)`.
    pub fn wrapping_sub(self, other: Id) -> Id {
        let ((a2, a1, a0), (b2, b1, b0)) = (self.limbs(), other.limbs());
        let (lo, b0_) = a0.overflowing_sub(b0);
        let (mid, b1_) = a1.overflowing_sub(b1);
        let (mid, b1b) = mid.overflowing_sub(u64::from(b0_));
        let hi = a2.wrapping_sub(b2).wrapping_sub(u32::from(b1_ || b1b));
        Id::from_limbs((hi, mid, lo))
    }

    /// `2^i` for `i < 160`.
    pub fn pow2(i: usize) -> Id {
        assert!(i < ID_BITS, "pow2 exponent {i} out of range");
        let mut out = [0u8; 20];
        out[19 - i / 8] = 1 << (i % 8);
        Id(out)
    }

    /// The finger target `self + 2^i (mod 2^160)`.
    pub fn finger_target(self, i: usize) -> Id {
        self.wrapping_add(Id::pow2(i))
    }

    /// Clockwise distance from `self` to `to`: `(to − self) mod 2^160`.
    pub fn distance_to(self, to: Id) -> Id {
        to.wrapping_sub(self)
    }

    /// `self ∈ (a, b)` going clockwise from `a`. When `a == b` the interval is the whole ring except `a`.
    pub fn in_open(self, a: Id, b: Id) -> bool {
        if a == b {
            return self != a;
        }
        let d_self = a.distance_to(self);
        let d_b = a.distance_to(b);
        d_self != Id::ZERO && d_self < d_b
    }

    /// `self ∈ (a, b]` going clockwise from `a`. When `a == b` the interval is the whole ring.
    pub fn in_half_open(self, a: Id, b: Id) -> bool {
        self == b || self.in_open(a, b)
    }

    /// Compares `x` and `y` by clockwise distance from `self` (nearest first).
    pub fn cmp_clockwise(self, x: Id, y: Id) -> Ordering {
        self.distance_to(x).cmp(&self.distance_to(y))
    }

    /// The position on the circle as a fraction of a turn in `[0, 1)` (for pictures and statistics).
    pub fn as_fraction(self) -> f64 {
        self.top64() as f64 / 2f64.powi(64)
    }

    /// The highest 64 bits, for comparing distances where 2^-64 of a turn is precise enough.
    pub fn top64(self) -> u64 {
        let mut top = [0u8; 8];
        top.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(top)
    }

    /// Index of the highest set bit of `self` (`None` for zero): `floor(log2(self))`.
    pub fn log2(self) -> Option<usize> {
        for (i, b) in self.0.iter().enumerate() {
            if *b != 0 {
                return Some((19 - i) * 8 + (7 - b.leading_zeros() as usize));
            }
        }
        None
    }

    /// Short hex form (first 4 bytes) for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<Id> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Id(out))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u64) -> Id {
        let mut b = [0u8; 20];
        b[12..].copy_from_slice(&n.to_be_bytes());
        Id(b)
    }

    #[test]
    fn top64_is_the_first_eight_bytes() {
        let mut b = [0u8; 20];
        b[..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
        b[8..].fill(0xff);
        assert_eq!(Id(b).top64(), 0x0123_4567_89ab_cdef);
        assert_eq!(Id::pow2(159).top64(), 1 << 63);
        assert_eq!(Id::pow2(95).top64(), 0);
    }

    #[test]
    fn intervals_wrap_around_zero() {
        assert!(id(5).in_open(id(3), id(7)));
        assert!(!id(3).in_open(id(3), id(7)));
        assert!(!id(7).in_open(id(3), id(7)));
        assert!(id(7).in_half_open(id(3), id(7)));
        // (MAX-1, 2) contains MAX, 0 and 1.
        let a = Id::MAX.wrapping_sub(id(1));
        assert!(Id::MAX.in_open(a, id(2)));
        assert!(Id::ZERO.in_open(a, id(2)));
        assert!(id(1).in_open(a, id(2)));
        assert!(!id(2).in_open(a, id(2)));
        assert!(!id(3).in_open(a, id(2)));
        // a == b: everything but a.
        assert!(id(9).in_open(id(4), id(4)));
        assert!(!id(4).in_open(id(4), id(4)));
        assert!(id(4).in_half_open(id(4), id(4)));
    }

    #[test]
    fn pow2_and_log2() {
        for i in 0..ID_BITS {
            assert_eq!(Id::pow2(i).log2(), Some(i));
        }
        assert_eq!(Id::ZERO.log2(), None);
        assert_eq!(Id::MAX.wrapping_add(id(1)), Id::ZERO);
    }

    fn any_id() -> impl Strategy<Value = Id> {
        any::<[u8; 20]>().prop_map(Id)
    }

    /// The byte-wise arithmetic the limbs replaced.
    fn bytewise_add(a: Id, b: Id) -> Id {
        let mut out = [0u8; 20];
        let mut carry = 0u16;
        for i in (0..20).rev() {
            let s = u16::from(a.0[i]) + u16::from(b.0[i]) + carry;
            out[i] = s as u8;
            carry = s >> 8;
        }
        Id(out)
    }

    fn bytewise_sub(a: Id, b: Id) -> Id {
        let mut out = [0u8; 20];
        let mut borrow = 0i16;
        for i in (0..20).rev() {
            let mut d = i16::from(a.0[i]) - i16::from(b.0[i]) - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            out[i] = d as u8;
        }
        Id(out)
    }

    /// Ids with runs of 0x00 and 0xff bytes, where carries and borrows cross limbs.
    fn edgy_id() -> impl Strategy<Value = Id> {
        proptest::collection::vec(prop_oneof![Just(0u8), Just(0xffu8), Just(1u8), any::<u8>()], 20)
            .prop_map(|v| Id(v.try_into().unwrap()))
    }

    proptest! {
        #[test]
        fn limbs_agree_with_bytes(a in edgy_id(), b in edgy_id()) {
            prop_assert_eq!(a.wrapping_add(b), bytewise_add(a, b));
            prop_assert_eq!(a.wrapping_sub(b), bytewise_sub(a, b));
            prop_assert_eq!(a.cmp(&b), a.0.cmp(&b.0));
        }

        #[test]
        fn add_sub_inverse(a in any_id(), b in any_id()) {
            prop_assert_eq!(a.wrapping_add(b).wrapping_sub(b), a);
            prop_assert_eq!(a.distance_to(b).wrapping_add(a), b);
        }

        #[test]
        fn open_interval_splits_ring(a in any_id(), b in any_id(), x in any_id()) {
            prop_assume!(a != b && x != a && x != b);
            // Exactly one of (a,b) and (b,a) holds x.
            prop_assert!(x.in_open(a, b) ^ x.in_open(b, a));
        }

        #[test]
        fn half_open_matches_distance(a in any_id(), b in any_id(), x in any_id()) {
            let expected = a == b || (a.distance_to(x) != Id::ZERO && a.distance_to(x) <= a.distance_to(b));
            prop_assert_eq!(x.in_half_open(a, b), expected);
        }
    }
}

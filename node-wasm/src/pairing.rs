//! Pairing codes: the text a person copies from one browser and pastes into the other.
//!
//! ```text
//!   chordial-offer:<base64url of the signed ConnectOffer envelope>      (made by pairOffer)
//!   chordial-answer:<base64url of the signed ConnectAnswer envelope>    (made by pairAnswer)
//! ```
//!
//! The payload is the core's signed envelope, byte for byte (`core/src/node/pairing.rs`): the prefix only
//! says which side it goes to, so that a code pasted into the wrong field gets a plain answer before anything
//! is decoded. Reading is forgiving about what chat apps and e-mail do to text — whitespace and line breaks
//! anywhere, `+`/`/` instead of `-`/`_`, `=` padding, the prefix in any case — and strict about everything
//! else. Every failure is an [`ApiError`] whose message says what to do.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chordial_core::node::{PairingError, PAIRING_TIMEOUT};
use chordial_core::wire::envelope::{DecodeError, Header, HEADER_LEN, MAX_FRAME};
use chordial_core::Timestamp;

use crate::error::{ApiError, BAD_CODE, BUSY, CODE_EXPIRED, CODE_USED, NO_MATCHING_OFFER, REFUSED};

/// Which side a code goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// Made by `pairOffer`, taken by `pairAnswer` on the other browser.
    Offer,
    /// Made by `pairAnswer`, taken by `pairComplete` on the browser that made the offer.
    Answer,
}

impl CodeKind {
    /// The prefix of codes of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            CodeKind::Offer => "chordial-offer:",
            CodeKind::Answer => "chordial-answer:",
        }
    }

    fn name(self) -> &'static str {
        match self {
            CodeKind::Offer => "an offer code",
            CodeKind::Answer => "an answer code",
        }
    }

    fn goes_to(self) -> &'static str {
        match self {
            CodeKind::Offer => "it goes to the other browser, which answers it",
            CodeKind::Answer => "it goes back to the browser that made the offer",
        }
    }
}

/// Longest text accepted as a code (a frame is at most `MAX_FRAME` bytes; base64 adds a third, and a
/// pasted code may carry whitespace).
const MAX_CODE_CHARS: usize = MAX_FRAME / 3 * 4 * 2;

/// The code for a signed frame.
pub fn encode(kind: CodeKind, frame: &[u8]) -> String {
    format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(frame))
}

/// The frame in a pasted code that should be of kind `want`.
pub fn decode(want: CodeKind, text: &str) -> Result<Vec<u8>, ApiError> {
    if text.len() > MAX_CODE_CHARS {
        return Err(ApiError::new(BAD_CODE, "this is far too long to be a pairing code"));
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(ApiError::new(BAD_CODE, "the code is empty: paste the code from the other browser"));
    }
    let lower = compact.to_ascii_lowercase();
    let other = match want {
        CodeKind::Offer => CodeKind::Answer,
        CodeKind::Answer => CodeKind::Offer,
    };
    if lower.starts_with(other.prefix()) {
        return Err(ApiError::new(
            BAD_CODE,
            format!("this is {}, not {}: {}", other.name(), want.name(), other.goes_to()),
        ));
    }
    if !lower.starts_with(want.prefix()) {
        return Err(ApiError::new(
            BAD_CODE,
            format!(
                "this is not a Chordial pairing code ({} starts with \"{}\"): copy the whole code again",
                want.name(),
                want.prefix()
            ),
        ));
    }
    let body = compact[want.prefix().len()..].trim_end_matches('=').replace('+', "-").replace('/', "_");
    if let Some((i, c)) =
        body.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(ApiError::new(
            BAD_CODE,
            format!("the code is damaged ('{c}' at character {}): copy it again in full", i + 1),
        ));
    }
    URL_SAFE_NO_PAD
        .decode(body.as_bytes())
        .map_err(|_| ApiError::new(BAD_CODE, "the code is cut short or damaged: copy it again in full"))
}

/// When the offer (in an offer frame, or the one an answer was made for) stops being accepted. `None` if
/// the frame does not read as an envelope (the core then says why).
pub fn offer_expires(offer_frame: &[u8]) -> Option<Timestamp> {
    let signed = offer_frame.get(HEADER_LEN..)?;
    let (header, _) = postcard::take_from_bytes::<Header>(signed).ok()?;
    Some(header.sent_at.saturating_add(PAIRING_TIMEOUT))
}

/// The JavaScript error for a code the core refused.
pub fn refused(e: &PairingError) -> ApiError {
    let (code, message) = match e {
        PairingError::Malformed(DecodeError::BadSignature) => (
            BAD_CODE,
            "the code was altered: its signature does not verify. Copy it again in full".to_string(),
        ),
        PairingError::Malformed(DecodeError::WrongNetwork) => {
            (BAD_CODE, "the code comes from a browser on another Chordial network".to_string())
        }
        PairingError::Malformed(DecodeError::Truncated(_)) => {
            (BAD_CODE, "the code is cut short: copy it again in full".to_string())
        }
        PairingError::Malformed(d) => (BAD_CODE, format!("the code does not read as a pairing code ({d})")),
        PairingError::WrongKind { expected } => {
            (BAD_CODE, format!("the code does not hold a pairing {expected} (was its prefix edited?)"))
        }
        PairingError::OwnCode => {
            (BAD_CODE, "this code was made by this browser: it belongs on the other browser".to_string())
        }
        PairingError::Expired => (
            CODE_EXPIRED,
            format!(
                "the offer expired (offers are good for {} minutes): make a new offer",
                PAIRING_TIMEOUT.as_secs() / 60
            ),
        ),
        PairingError::AlreadyUsed => {
            (CODE_USED, "this offer was already answered here; each offer is answered once".to_string())
        }
        PairingError::NoMatchingOffer => (
            NO_MATCHING_OFFER,
            "no offer of this browser waits for this answer: the offer expired or was already answered, or \
             the answer was made for another browser's offer. Make a new offer"
                .to_string(),
        ),
        PairingError::FromTheFuture => (
            REFUSED,
            "the offer is dated in the future: one of the two computers' clocks is wrong".to_string(),
        ),
        PairingError::Unauthorized(d) => {
            (REFUSED, format!("the other browser's wallet session does not verify ({d})"))
        }
        PairingError::AlreadyLinked => (REFUSED, "this browser is already linked to that node".to_string()),
        PairingError::Busy => (BUSY, "no room for another link now: try again in a minute".to_string()),
    };
    ApiError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_survive_what_chat_apps_do() {
        let frame: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
        let code = encode(CodeKind::Offer, &frame);
        assert!(code.starts_with("chordial-offer:"));
        assert!(code["chordial-offer:".len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(code.len(), "chordial-offer:".len() + 2000);
        assert_eq!(decode(CodeKind::Offer, &code).unwrap(), frame);
        // Wrapped over lines, padded, standard alphabet, prefix in capitals.
        let mangled: String = code
            .to_string()
            .replacen("chordial-offer:", "Chordial-Offer:\n", 1)
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 60 == 59 { vec![c, '\n', ' '] } else { vec![c] })
            .collect::<String>()
            .replace('-', "+")
            .replace('_', "/")
            .replacen("Chordial+Offer", "Chordial-Offer", 1)
            + "==\n";
        assert_eq!(decode(CodeKind::Offer, &mangled).unwrap(), frame);
    }

    #[test]
    fn a_code_in_the_wrong_field_says_where_it_goes() {
        let answer = encode(CodeKind::Answer, b"xyz");
        let e = decode(CodeKind::Offer, &answer).unwrap_err();
        assert_eq!(e.code, BAD_CODE);
        assert_eq!(
            e.message,
            "this is an answer code, not an offer code: it goes back to the browser that made the offer"
        );
        let e = decode(CodeKind::Answer, &encode(CodeKind::Offer, b"xyz")).unwrap_err();
        assert!(e.message.contains("it goes to the other browser"), "{}", e.message);
    }

    #[test]
    fn damaged_and_foreign_text_is_refused_with_a_reason() {
        let e = decode(CodeKind::Offer, "  \n ").unwrap_err();
        assert!(e.message.starts_with("the code is empty"));
        let e = decode(CodeKind::Offer, "hello there").unwrap_err();
        assert!(e.message.starts_with("this is not a Chordial pairing code"), "{}", e.message);
        let e = decode(CodeKind::Offer, "chordial-offer:abc*def").unwrap_err();
        assert_eq!(e.message, "the code is damaged ('*' at character 4): copy it again in full");
        // One base64 character alone cannot be a byte.
        let e = decode(CodeKind::Offer, "chordial-offer:abcde").unwrap_err();
        assert!(e.message.starts_with("the code is cut short"), "{}", e.message);
        let e = decode(CodeKind::Offer, &"a".repeat(MAX_CODE_CHARS + 1)).unwrap_err();
        assert_eq!(e.code, BAD_CODE);
    }

    #[test]
    fn every_refusal_has_a_code_and_a_next_step() {
        let all = [
            PairingError::Malformed(DecodeError::BadSignature),
            PairingError::Malformed(DecodeError::WrongNetwork),
            PairingError::Malformed(DecodeError::Truncated(3)),
            PairingError::Malformed(DecodeError::Malformed),
            PairingError::WrongKind { expected: "offer" },
            PairingError::OwnCode,
            PairingError::Expired,
            PairingError::AlreadyUsed,
            PairingError::NoMatchingOffer,
            PairingError::FromTheFuture,
            PairingError::AlreadyLinked,
            PairingError::Busy,
        ];
        for e in &all {
            let api = refused(e);
            assert!(!api.message.is_empty());
        }
        assert_eq!(refused(&PairingError::Expired).code, CODE_EXPIRED);
        assert_eq!(refused(&PairingError::AlreadyUsed).code, CODE_USED);
        assert_eq!(refused(&PairingError::NoMatchingOffer).code, NO_MATCHING_OFFER);
        assert_eq!(refused(&PairingError::Malformed(DecodeError::BadSignature)).code, BAD_CODE);
    }

    #[test]
    fn the_offer_expiry_is_read_from_its_signed_header() {
        use chordial_core::wire::envelope::{self, Destination, MessageId, NetworkTag};
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let key = chordial_core::identity::SessionKey::generate(&mut rng);
        let header = Header {
            network: NetworkTag::from_name("test"),
            id: MessageId::random(&mut rng),
            sent_at: Timestamp(1_800_000_000_000),
            dest: Destination::Neighbor,
            hop_limit: 1,
            reply_to: None,
        };
        let frame = envelope::encode(&key, &header, &42u32).unwrap();
        assert_eq!(
            offer_expires(&frame),
            Some(Timestamp(1_800_000_000_000 + PAIRING_TIMEOUT.as_millis() as u64))
        );
        assert_eq!(offer_expires(b"short"), None);
    }
}

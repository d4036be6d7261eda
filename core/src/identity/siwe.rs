//! Sign-In with Ethereum (EIP-4361) messages: building the exact text and parsing it back, strictly.
//!
//! The text a wallet signs is:
//!
//! ```text
//! {domain} wants you to sign in with your Ethereum account:
//! {address, EIP-55}
//!
//! {statement}            ← optional; without it this line and the blank after it become one blank line
//!
//! URI: {uri}
//! Version: 1
//! Chain ID: {chain id}
//! Nonce: {nonce}
//! Issued At: {RFC 3339}
//! Expiration Time: {RFC 3339}     ← optional, and so are the lines below, in this order
//! Not Before: {RFC 3339}
//! Request ID: {request id}
//! Resources:
//! - {uri}
//! - {uri}
//! ```
//!
//! Lines end with a single LF and the message has no trailing newline. Times are written the way
//! JavaScript's `Date.prototype.toISOString` writes them (`2026-11-24T23:17:44.123Z`, UTC, milliseconds),
//! which is what viem and most dApps produce.
//!
//! [`SiweMessage::parse`] accepts exactly that layout and nothing looser: the length is bounded
//! ([`MAX_MESSAGE_LEN`]) before anything else, every field is checked against its EIP-4361 grammar, the
//! address line must be in EIP-55 form, and it never panics. Deliberate narrowings of the EIP, all of which
//! viem's `createSiweMessage` output satisfies: no `scheme://` before the domain, no userinfo in the domain,
//! an empty `Resources:` list is refused, times must be in years 1970–9999 with upper-case `T`/`Z` and no
//! leap second. Offsets other than `Z` and any number of fraction digits are accepted (the fraction is
//! truncated to milliseconds).

use std::fmt;
use std::iter::Peekable;
use std::str::Split;

use super::address::{Address, AddressError};
use crate::time::Timestamp;

/// Longest message accepted by [`SiweMessage::parse`], in bytes. A Chordial delegation is about 600.
pub const MAX_MESSAGE_LEN: usize = 4096;

const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";
const MIN_NONCE_LEN: usize = 8;

/// Why a text is not a well-formed EIP-4361 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SiweError {
    /// The text is longer than [`MAX_MESSAGE_LEN`] bytes (checked before anything else).
    #[error("SIWE message longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    /// The first line is not `<domain> wants you to sign in with your Ethereum account:`.
    #[error("SIWE header line malformed")]
    BadHeader,
    /// The domain is not an RFC 3986 host with an optional port.
    #[error("SIWE domain is not a host[:port]")]
    BadDomain,
    /// The address line is not an address.
    #[error("SIWE address line: {0}")]
    BadAddress(AddressError),
    /// The address line is an address, but not written in its EIP-55 checksummed form.
    #[error("SIWE address is not EIP-55 checksummed")]
    AddressNotChecksummed,
    /// The text ended before a required line.
    #[error("SIWE message truncated")]
    Truncated,
    /// A line is not what the layout requires at that place (1-based line number).
    #[error("SIWE line {0} is not what EIP-4361 expects there")]
    UnexpectedLine(usize),
    /// The statement is empty or contains a character EIP-4361 does not allow.
    #[error("SIWE statement contains forbidden characters")]
    BadStatement,
    /// The `URI` value is not an RFC 3986 URI.
    #[error("SIWE URI is not an RFC 3986 URI")]
    BadUri,
    /// The `Version` is not `1`.
    #[error("SIWE version must be 1")]
    BadVersion,
    /// The `Chain ID` is not a decimal number without leading zeros that fits 64 bits.
    #[error("SIWE chain id malformed")]
    BadChainId,
    /// The `Nonce` is not at least 8 ASCII letters and digits.
    #[error("SIWE nonce must be at least 8 alphanumerics")]
    BadNonce,
    /// A time is not an RFC 3339 date-time between 1970 and 9999.
    #[error("SIWE time is not an RFC 3339 date-time")]
    BadTime,
    /// The `Request ID` contains characters outside RFC 3986 `pchar`.
    #[error("SIWE request id contains forbidden characters")]
    BadRequestId,
    /// A `Resources` entry is not an RFC 3986 URI.
    #[error("SIWE resource is not an RFC 3986 URI")]
    BadResource,
    /// `Resources:` is present with no entries.
    #[error("SIWE resources list is empty")]
    EmptyResources,
}

/// An EIP-4361 message. `Display` writes the exact text to sign; [`SiweMessage::parse`] reads it back.
///
/// Display does not validate: a message built with an invalid field (say, a statement with a newline or an
/// empty resources entry) displays as text that `parse` refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    /// The RFC 3986 authority (host and optional port) asking for the signature.
    pub domain: String,
    /// The signing address.
    pub address: Address,
    /// Human-readable text the wallet shows; one line, EIP-4361 `reserved`/`unreserved` characters and space.
    pub statement: Option<String>,
    /// The subject of the signature; for Chordial the session key's `did:key`.
    pub uri: String,
    /// Always `"1"`.
    pub version: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// At least 8 alphanumerics, against replay.
    pub nonce: String,
    /// When the message was made.
    pub issued_at: Timestamp,
    /// When the signed message stops being valid.
    pub expiration_time: Option<Timestamp>,
    /// When the signed message starts being valid.
    pub not_before: Option<Timestamp>,
    /// An application-defined id (RFC 3986 `pchar`s).
    pub request_id: Option<String>,
    /// URIs the signer grants access to.
    pub resources: Vec<String>,
}

impl fmt::Display for SiweMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{HEADER_SUFFIX}\n{}\n\n", self.domain, self.address)?;
        if let Some(statement) = &self.statement {
            writeln!(f, "{statement}")?;
        }
        write!(
            f,
            "\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.uri,
            self.version,
            self.chain_id,
            self.nonce,
            format_rfc3339(self.issued_at)
        )?;
        if let Some(t) = self.expiration_time {
            write!(f, "\nExpiration Time: {}", format_rfc3339(t))?;
        }
        if let Some(t) = self.not_before {
            write!(f, "\nNot Before: {}", format_rfc3339(t))?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "\nRequest ID: {id}")?;
        }
        if !self.resources.is_empty() {
            f.write_str("\nResources:")?;
            for r in &self.resources {
                write!(f, "\n- {r}")?;
            }
        }
        Ok(())
    }
}

/// The message's lines with their 1-based numbers, for error reporting.
struct Lines<'a> {
    iter: Peekable<Split<'a, char>>,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Result<&'a str, SiweError> {
        let line = self.iter.next().ok_or(SiweError::Truncated)?;
        self.number += 1;
        Ok(line)
    }

    /// The next line, which must be `prefix` followed by the value returned.
    fn field(&mut self, prefix: &str) -> Result<&'a str, SiweError> {
        let line = self.next()?;
        line.strip_prefix(prefix).ok_or(SiweError::UnexpectedLine(self.number))
    }

    /// The next line's value if it starts with `prefix`, consuming it; otherwise nothing is consumed.
    fn optional(&mut self, prefix: &str) -> Option<&'a str> {
        let value = self.iter.peek()?.strip_prefix(prefix)?;
        self.iter.next();
        self.number += 1;
        Some(value)
    }

    fn blank(&mut self) -> Result<(), SiweError> {
        if self.next()?.is_empty() {
            Ok(())
        } else {
            Err(SiweError::UnexpectedLine(self.number))
        }
    }
}

impl SiweMessage {
    /// Parses the exact EIP-4361 text (see the module docs for what is accepted).
    pub fn parse(text: &str) -> Result<SiweMessage, SiweError> {
        if text.len() > MAX_MESSAGE_LEN {
            return Err(SiweError::TooLong);
        }
        let mut lines = Lines { iter: text.split('\n').peekable(), number: 0 };

        let domain = lines.next()?.strip_suffix(HEADER_SUFFIX).ok_or(SiweError::BadHeader)?;
        if !is_domain(domain) {
            return Err(SiweError::BadDomain);
        }
        let address_line = lines.next()?;
        let address = Address::parse(address_line).map_err(SiweError::BadAddress)?;
        if address.to_checksum() != address_line {
            return Err(SiweError::AddressNotChecksummed);
        }
        lines.blank()?;
        // Either a blank line (no statement) or the statement followed by a blank line.
        let statement = match lines.next()? {
            "" => None,
            s => {
                if !is_statement(s) {
                    return Err(SiweError::BadStatement);
                }
                lines.blank()?;
                Some(s.to_owned())
            }
        };

        let uri = lines.field("URI: ")?;
        if !is_uri(uri) {
            return Err(SiweError::BadUri);
        }
        let version = lines.field("Version: ")?;
        if version != "1" {
            return Err(SiweError::BadVersion);
        }
        let chain_id = parse_chain_id(lines.field("Chain ID: ")?)?;
        let nonce = lines.field("Nonce: ")?;
        if nonce.len() < MIN_NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SiweError::BadNonce);
        }
        let issued_at = parse_time(lines.field("Issued At: ")?)?;
        let expiration_time = lines.optional("Expiration Time: ").map(parse_time).transpose()?;
        let not_before = lines.optional("Not Before: ").map(parse_time).transpose()?;
        let request_id = match lines.optional("Request ID: ") {
            Some(id) if id.bytes().all(is_pchar_byte) => Some(id.to_owned()),
            Some(_) => return Err(SiweError::BadRequestId),
            None => None,
        };
        let mut resources = Vec::new();
        if let Some(rest) = lines.optional("Resources:") {
            if !rest.is_empty() {
                return Err(SiweError::UnexpectedLine(lines.number));
            }
            while let Some(r) = lines.optional("- ") {
                if !is_uri(r) {
                    return Err(SiweError::BadResource);
                }
                resources.push(r.to_owned());
            }
            if resources.is_empty() {
                return Err(SiweError::EmptyResources);
            }
        }
        if lines.iter.peek().is_some() {
            return Err(SiweError::UnexpectedLine(lines.number + 1));
        }

        Ok(SiweMessage {
            domain: domain.to_owned(),
            address,
            statement,
            uri: uri.to_owned(),
            version: version.to_owned(),
            chain_id,
            nonce: nonce.to_owned(),
            issued_at,
            expiration_time,
            not_before,
            request_id,
            resources,
        })
    }
}

fn parse_time(s: &str) -> Result<Timestamp, SiweError> {
    parse_rfc3339(s).ok_or(SiweError::BadTime)
}

fn parse_chain_id(s: &str) -> Result<u64, SiweError> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(SiweError::BadChainId);
    }
    s.parse().map_err(|_| SiweError::BadChainId)
}

/// RFC 3986 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `reserved` (`gen-delims` and `sub-delims`).
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b':' | b'/'
            | b'?'
            | b'#'
            | b'['
            | b']'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
    )
}

/// RFC 3986 `pchar` without percent-encoding: `unreserved / sub-delims / ":" / "@"`.
fn is_pchar_byte(b: u8) -> bool {
    is_unreserved(b) || (is_reserved(b) && !matches!(b, b'/' | b'?' | b'#' | b'[' | b']'))
}

/// EIP-4361 `statement = *( reserved / unreserved / " " )`, and non-empty.
fn is_statement(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| is_unreserved(b) || is_reserved(b) || b == b' ')
}

/// An RFC 3986 URI, checked at the level of characters: a scheme, `:`, then only URI characters with
/// complete `%XX` escapes.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    scheme_ok && is_uri_chars(rest)
}

fn is_uri_chars(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let escape_ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !escape_ok {
                return false;
            }
            i += 3;
        } else if is_unreserved(b) || is_reserved(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `host [":" port]`, host a registered name (unreserved characters) or a bracketed IP literal.
fn is_domain(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else { return false };
        let literal_ok =
            !literal.is_empty() && literal.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return false,
        };
        (literal_ok, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        (!host.is_empty() && host.bytes().all(is_unreserved), port)
    };
    host_ok && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes a time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, like JavaScript's `toISOString` (for years up to 9999).
pub fn format_rfc3339(t: Timestamp) -> String {
    let millis = t.as_millis();
    let secs = millis / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // u64 milliseconds reach year ~584 million: days fit an i64 with room to spare.
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        millis % 1000
    )
}

/// Parses an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`) into milliseconds since the
/// epoch. Fractions beyond milliseconds are truncated; times before 1970 and leap seconds are refused.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0u64;
    if let Some((b'.', after)) = rest.split_first() {
        let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10 + after.get(i).filter(|_| i < n).map_or(0, |c| u64::from(c - b'0'));
        }
        rest = &after[n..];
    }
    let offset_minutes: i64 = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = i64::from(h * 60 + m);
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    let secs = u64::try_from(secs).ok()?;
    Some(Timestamp(secs * 1000 + millis))
}

/// A fixed-width run of ASCII digits as a number.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Years are shifted to start in March so the leap
/// day is the last day of the shifted year; 400-year eras then repeat exactly (146 097 days).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = i64::from((month + 9) % 12); // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468 // 719 468 = days from 0000-03-01 to 1970-01-01
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ADDRESS: &str = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf";

    fn example() -> SiweMessage {
        SiweMessage {
            domain: "example.com".into(),
            address: Address::parse(ADDRESS).unwrap(),
            statement: Some("Sign in to the example.".into()),
            uri: "https://example.com/login".into(),
            version: "1".into(),
            chain_id: 1,
            nonce: "abcdEFGH1234".into(),
            issued_at: parse_rfc3339("2026-11-24T23:17:44.123Z").unwrap(),
            expiration_time: Some(parse_rfc3339("2026-12-24T23:17:44.123Z").unwrap()),
            not_before: None,
            request_id: None,
            resources: vec!["urn:chordial:network:main".into(), "ipfs://bafy/x".into()],
        }
    }

    const EXAMPLE_TEXT: &str = "example.com wants you to sign in with your Ethereum account:
0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf

Sign in to the example.

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: abcdEFGH1234
Issued At: 2026-11-24T23:17:44.123Z
Expiration Time: 2026-12-24T23:17:44.123Z
Resources:
- urn:chordial:network:main
- ipfs://bafy/x";

    #[test]
    fn display_is_the_eip_layout() {
        assert_eq!(example().to_string(), EXAMPLE_TEXT);
        assert_eq!(SiweMessage::parse(EXAMPLE_TEXT), Ok(example()));
    }

    #[test]
    fn no_statement_and_all_optional_fields() {
        let mut m = example();
        m.statement = None;
        m.not_before = Some(Timestamp(1_000));
        m.request_id = Some("req-1:@x".into());
        m.resources.clear();
        let text = m.to_string();
        assert!(text.contains(&format!("{ADDRESS}\n\n\nURI: ")), "{text}");
        assert!(text.ends_with("\nNot Before: 1970-01-01T00:00:01.000Z\nRequest ID: req-1:@x"), "{text}");
        assert_eq!(SiweMessage::parse(&text), Ok(m));
    }

    #[test]
    fn strictness() {
        let ok = EXAMPLE_TEXT;
        let bad = |from: &str, to: &str| SiweMessage::parse(&ok.replacen(from, to, 1)).unwrap_err();
        assert_eq!(SiweMessage::parse(&"a".repeat(MAX_MESSAGE_LEN + 1)), Err(SiweError::TooLong));
        assert_eq!(bad("wants you", "want you"), SiweError::BadHeader);
        assert_eq!(bad("example.com wants", "https://example.com wants"), SiweError::BadDomain);
        assert_eq!(bad("example.com wants", "user@example.com wants"), SiweError::BadDomain);
        assert_eq!(bad("example.com wants", " wants"), SiweError::BadDomain);
        assert_eq!(bad("example.com wants", "example.com:123456 wants"), SiweError::BadDomain);
        assert_eq!(bad(ADDRESS, &ADDRESS.to_ascii_lowercase()), SiweError::AddressNotChecksummed);
        assert_eq!(
            bad(ADDRESS, "0x7e5F4552091A69125d5DfCb7b8C2659029395Bdf"),
            SiweError::BadAddress(AddressError::BadChecksum)
        );
        assert_eq!(bad("example.\n\nURI", "example.\nURI"), SiweError::UnexpectedLine(5));
        assert_eq!(bad("Sign in to the example.", "Sign in\tto"), SiweError::BadStatement);
        assert_eq!(bad("Sign in to the example.", "Ünïcode"), SiweError::BadStatement);
        assert_eq!(bad("URI: https", "URI: ht tps"), SiweError::BadUri);
        assert_eq!(bad("URI: https://example.com/login", "URI: /login"), SiweError::BadUri);
        assert_eq!(bad("URI: https://example.com/login", "URI: https://e.com/%zz"), SiweError::BadUri);
        assert_eq!(bad("Version: 1", "Version: 2"), SiweError::BadVersion);
        assert_eq!(bad("Chain ID: 1", "Chain ID: 01"), SiweError::BadChainId);
        assert_eq!(bad("Chain ID: 1", "Chain ID: 99999999999999999999"), SiweError::BadChainId);
        assert_eq!(bad("Chain ID: 1", "Chain ID: -1"), SiweError::BadChainId);
        assert_eq!(bad("abcdEFGH1234", "abcdEFG"), SiweError::BadNonce);
        assert_eq!(bad("abcdEFGH1234", "abcd-EFGH1234"), SiweError::BadNonce);
        assert_eq!(bad("23:17:44.123Z\nExp", "23:17:44.123\nExp"), SiweError::BadTime);
        assert_eq!(bad("2026-11-24T", "2026-11-31T"), SiweError::BadTime);
        assert_eq!(bad("Nonce", "nonce"), SiweError::UnexpectedLine(9));
        assert_eq!(bad("Expiration Time", "Expiry Time"), SiweError::UnexpectedLine(11));
        assert_eq!(bad("- ipfs://bafy/x", "- ipfs bafy"), SiweError::BadResource);
        assert_eq!(
            bad("\nResources:\n- urn:chordial:network:main\n- ipfs://bafy/x", "\nResources:"),
            SiweError::EmptyResources
        );
        assert_eq!(bad("Resources:", "Resources: "), SiweError::UnexpectedLine(12));
        assert_eq!(
            SiweMessage::parse(&ok.replacen(
                "\nResources:\n- urn:chordial:network:main\n- ipfs://bafy/x",
                "\nResources:x",
                1
            )),
            Err(SiweError::UnexpectedLine(12))
        );
        assert_eq!(SiweMessage::parse(&format!("{ok}\n")), Err(SiweError::UnexpectedLine(15)));
        assert_eq!(SiweMessage::parse(&ok.replace('\n', "\r\n")), Err(SiweError::BadHeader));
        assert_eq!(SiweMessage::parse(&ok[..ok.find("URI").unwrap()]), Err(SiweError::UnexpectedLine(6)));
        assert_eq!(SiweMessage::parse(&ok[..ok.find("\nURI").unwrap()]), Err(SiweError::Truncated));
        // Optional fields out of order.
        let mut m = example();
        m.not_before = Some(Timestamp(0));
        let swapped = m.to_string().replacen("Expiration Time", "Xpiration Time", 1);
        assert!(SiweMessage::parse(&swapped).is_err());
        let text = m.to_string();
        let exp = text.lines().find(|l| l.starts_with("Expiration")).unwrap();
        let nbf = text.lines().find(|l| l.starts_with("Not Before")).unwrap();
        let reordered = text.replacen(exp, "@@", 1).replacen(nbf, exp, 1).replacen("@@", nbf, 1);
        assert_eq!(SiweMessage::parse(&reordered), Err(SiweError::UnexpectedLine(12)));
    }

    #[test]
    fn domains() {
        for ok in ["example.com", "localhost:8080", "127.0.0.1", "[::1]:3000", "[2001:db8::1]", "a-b_c~d.io"]
        {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in ["", "exa mple.com", "a:", "a:b", "[::1", "[]", "[::1]x", "x/y", "a@b", "é.com"] {
            assert!(!is_domain(bad), "{bad}");
        }
    }

    #[test]
    fn times() {
        let t = |s: &str| parse_rfc3339(s).map(|t| t.0);
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(t("2000-02-29T12:00:00.5Z"), Some(951_825_600_500));
        assert_eq!(t("2000-02-29T12:00:00.123456789Z"), Some(951_825_600_123));
        assert_eq!(t("2000-02-29T13:30:00+01:30"), Some(951_825_600_000));
        assert_eq!(t("2000-02-29T10:00:00-02:00"), Some(951_825_600_000));
        assert_eq!(t("9999-12-31T23:59:59.999Z"), Some(253_402_300_799_999));
        for bad in [
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "2001-02-29T00:00:00Z",
            "2000-13-01T00:00:00Z",
            "2000-00-01T00:00:00Z",
            "2000-01-01T24:00:00Z",
            "2000-01-01T23:60:00Z",
            "2000-12-31T23:59:60Z",
            "2000-01-01t00:00:00Z",
            "2000-01-01T00:00:00z",
            "2000-01-01T00:00:00",
            "2000-01-01T00:00:00.Z",
            "2000-01-01T00:00:00+0100",
            "2000-01-01T00:00:00+24:00",
            "2000-01-01 00:00:00Z",
            "+2000-01-01T00:00:00Z",
            "2000-1-01T00:00:00Z",
            "2000-01-01T00:00:00ZZ",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(format_rfc3339(Timestamp(951_825_600_500)), "2000-02-29T12:00:00.500Z");
        assert_eq!(format_rfc3339(Timestamp::ZERO), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn civil_conversion_matches_day_by_day() {
        // Walk every day from 1970 to 2400 and check both directions against a plain calendar count.
        let mut days = 0i64;
        for year in 1970..2400u32 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(i64::from(year), month, day), days);
                    assert_eq!(civil_from_days(days), (i64::from(year), month, day));
                    days += 1;
                }
            }
        }
    }

    fn arb_message() -> impl Strategy<Value = SiweMessage> {
        let domain = prop_oneof![
            "[a-z0-9-]{1,20}(\\.[a-z]{2,6}){0,2}",
            "[a-z]{1,10}:[0-9]{1,5}",
            "\\[[0-9a-f:]{2,16}\\](:[0-9]{1,5})?",
        ];
        let uri = prop_oneof![
            "https://[a-z.]{1,20}(/[a-zA-Z0-9._~-]{0,20})?",
            "did:key:z[1-9A-HJ-NP-Za-km-z]{40,48}"
        ];
        let time = 0u64..=253_402_300_799_999;
        (
            (domain, any::<[u8; 20]>(), proptest::option::of("[a-zA-Z0-9 ,.:;'()!?&=+*$@/#~_-]{1,80}"), uri),
            (any::<u64>(), "[a-zA-Z0-9]{8,32}", time.clone()),
            (
                proptest::option::of(time.clone()),
                proptest::option::of(time),
                proptest::option::of("[a-zA-Z0-9:@!$&'()*+,;=._~-]{0,20}"),
            ),
            proptest::collection::vec("(urn|https|ipfs):[a-zA-Z0-9/:.-]{1,30}", 0..4),
        )
            .prop_map(
                |(
                    (domain, address, statement, uri),
                    (chain_id, nonce, issued_at),
                    (exp, nbf, request_id),
                    resources,
                )| {
                    SiweMessage {
                        domain,
                        address: Address(address),
                        statement,
                        uri,
                        version: "1".into(),
                        chain_id,
                        nonce,
                        issued_at: Timestamp(issued_at),
                        expiration_time: exp.map(Timestamp),
                        not_before: nbf.map(Timestamp),
                        request_id,
                        resources,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(m in arb_message()) {
            let text = m.to_string();
            prop_assert_eq!(SiweMessage::parse(&text), Ok(m));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = SiweMessage::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_mutations(m in arb_message(), pos in any::<prop::sample::Index>(), len in 0usize..40, insert in "\\PC{0,8}|\n|\n\n|: |- ") {
            // Splice random text into a valid message: exercises every branch past the first line.
            let text = m.to_string();
            let mut at = pos.index(text.len() + 1);
            while !text.is_char_boundary(at) { at -= 1; }
            let mut end = (at + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            let mutated = format!("{}{}{}", &text[..at], insert, &text[end.max(at)..]);
            let _ = SiweMessage::parse(&mutated);
        }

        #[test]
        fn time_round_trips(ms in 0u64..=253_402_300_799_999) {
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(Timestamp(ms))), Some(Timestamp(ms)));
        }

        #[test]
        fn time_parse_never_panics(s in "[0-9T:.Z+-]{0,30}|\\PC{0,30}") {
            let _ = parse_rfc3339(&s);
        }
    }
}

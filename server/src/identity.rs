//! The server's identity in its data dir. A server is its own wallet: on first run it creates a wallet
//! key and a session key (`identity.key`, mode 0600) and signs a delegation from the one to the other
//! (`delegation.json`), exactly the SIWE grant a browser user signs once. The delegation is renewed on
//! start when it is close to expiry or was made for another network; the keys never change, so the
//! node id and wallet address survive restarts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chordial_core::identity::delegation::{delegation_message, DelegationRequest, MAX_DELEGATION_LIFETIME};
use chordial_core::identity::{Delegation, SessionKey, WalletKey};
use chordial_core::Timestamp;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

/// File holding the wallet and session secret keys.
pub const KEY_FILE: &str = "identity.key";
/// File holding the self-delegation.
pub const DELEGATION_FILE: &str = "delegation.json";
/// The SIWE domain a server's self-delegation names.
const DOMAIN: &str = "chordial-server.local";
/// Lifetime of a server's self-delegation.
const LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Renew the delegation when it expires within this.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file exists but does not hold what it should.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    /// The wallet's secp256k1 secret key, hex.
    wallet_key: String,
    /// The session's secp256k1 secret key, hex.
    session_key: String,
}

/// A server's keys and delegation.
pub struct Identity {
    /// The wallet key (the server's address).
    pub wallet: WalletKey,
    /// The session key (the node id).
    pub session: SessionKey,
    /// The wallet's grant to the session.
    pub delegation: Delegation,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("wallet", &self.wallet.address())
            .field("node_id", &self.session.node_id())
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io { path: path.to_path_buf(), source }
}

fn corrupt(path: &Path, reason: impl ToString) -> IdentityError {
    IdentityError::Corrupt { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Loads the identity in `dir`, creating it (and `dir`) on first run; renews the delegation if needed.
pub fn load_or_create(dir: &Path, network: &str, now: Timestamp) -> Result<Identity, IdentityError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let key_path = dir.join(KEY_FILE);
    let (wallet, session) = if key_path.exists() {
        let text = fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| corrupt(&key_path, e))?;
        (
            parse_key(&key_path, &file.wallet_key, WalletKey::from_bytes)?,
            parse_key(&key_path, &file.session_key, SessionKey::from_bytes)?,
        )
    } else {
        let wallet = WalletKey::generate(&mut OsRng);
        let session = SessionKey::generate(&mut OsRng);
        let file = KeyFile {
            wallet_key: hex::encode(wallet.to_bytes()),
            session_key: hex::encode(session.to_bytes()),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| corrupt(&key_path, e))?;
        write_private(&key_path, text.as_bytes())?;
        tracing::info!(path = %key_path.display(), "created identity key");
        (wallet, session)
    };
    let del_path = dir.join(DELEGATION_FILE);
    let existing = if del_path.exists() {
        let text = fs::read_to_string(&del_path).map_err(io(&del_path))?;
        Some(serde_json::from_str::<Delegation>(&text).map_err(|e| corrupt(&del_path, e))?)
    } else {
        None
    };
    let still_good = existing.as_ref().is_some_and(|d| {
        d.verify(network, now.saturating_add(RENEW_BEFORE))
            .is_ok_and(|v| v.session == *session.public() && v.wallet == wallet.address())
    });
    let delegation = match existing {
        Some(d) if still_good => d,
        _ => {
            let mut req = DelegationRequest::new(DOMAIN, wallet.address(), 1, network);
            req.lifetime = LIFETIME.min(MAX_DELEGATION_LIFETIME);
            let message = delegation_message(session.public(), &req, now, &mut OsRng);
            let d = Delegation::sign(&message, &wallet);
            let text = serde_json::to_string_pretty(&d).map_err(|e| corrupt(&del_path, e))?;
            write_private(&del_path, text.as_bytes())?;
            tracing::info!(path = %del_path.display(), network, "signed self-delegation");
            d
        }
    };
    Ok(Identity { wallet, session, delegation })
}

fn parse_key<K, E: std::fmt::Display>(
    path: &Path,
    hex_text: &str,
    from: impl FnOnce(&[u8; 32]) -> Result<K, E>,
) -> Result<K, IdentityError> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| corrupt(path, e))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| corrupt(path, "a key is not 32 bytes"))?;
    from(&bytes).map_err(|e| corrupt(path, e))
}

/// Writes a file readable by its owner only (mode 0600 from creation, then renamed into place).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn first_run_creates_a_private_key_and_a_valid_delegation() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), "t", NOW).unwrap();
        let v = id.delegation.verify("t", NOW).unwrap();
        assert_eq!(v.wallet, id.wallet.address());
        assert_eq!(v.session, *id.session.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn restart_keeps_keys_and_delegation_and_renews_for_another_network() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), "t", NOW).unwrap();
        let b = load_or_create(dir.path(), "t", NOW.saturating_add(Duration::from_secs(60))).unwrap();
        assert_eq!(a.wallet.address(), b.wallet.address());
        assert_eq!(a.session.node_id(), b.session.node_id());
        assert_eq!(a.delegation, b.delegation);
        let c = load_or_create(dir.path(), "other", NOW).unwrap();
        assert_eq!(a.session.node_id(), c.session.node_id());
        assert!(c.delegation.verify("other", NOW).is_ok());
    }

    #[test]
    fn a_corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not json").unwrap();
        let err = load_or_create(dir.path(), "t", NOW).unwrap_err();
        assert!(err.to_string().contains(KEY_FILE), "{err}");
    }
}

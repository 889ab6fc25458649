//! The master key that seals agents' secrets at rest, and the sealing itself.
//!
//! - **Cipher**: XChaCha20-Poly1305, a fresh random 192-bit nonce per write: random
//!   nonces of that size do not repeat under one key in any realistic number of writes.
//! - **Associated data**: `agentd-secret-v1`, the tenant id, the agent id and the
//!   secret's name, NUL-separated. A sealed value copied into another row (another
//!   agent, tenant or name) fails to open instead of handing its value to someone else.
//! - **Key id**: the first 8 bytes of SHA-256 over a fixed label and the key, in hex,
//!   stored with every secret, so that a rotation knows what each one is sealed under
//!   and a server that lacks the key can say which one it lacks. It reveals nothing of a
//!   random 256-bit key.
//!
//! A key is written as 64 hex digits or as standard base64 of its 32 bytes
//! (`openssl rand -base64 32`). [`MasterKeys`] holds the current key, which seals every
//! write, and during a rotation the previous one, which still opens what it sealed.

use agentd_core::{AgentId, Secret, TenantId};
use agentd_store::SealedSecret;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Bytes in a master key.
pub const MASTER_KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const KEY_ID_LABEL: &[u8] = b"agentd master key id v1\0";
const AAD_LABEL: &str = "agentd-secret-v1";
const WEBHOOK_AAD_LABEL: &str = "agentd-webhook-secret-v1";

/// A key that seals secrets. `Debug` shows its id only.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; MASTER_KEY_BYTES],
    id: String,
}

/// Why a text is not a master key. The messages never repeat the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error(
        "must be {MASTER_KEY_BYTES} bytes, written as 64 hex digits or in base64 \
         (make one with `openssl rand -base64 32`); this one is {len} bytes"
    )]
    WrongLength { len: usize },
    #[error("is neither 64 hex digits nor base64; make one with `openssl rand -base64 32`")]
    Encoding,
}

/// The example master key shown in docs/SECURITY.md (base64
/// `ZXhhbXBsZS1tYXN0ZXIta2V5LWRvLW5vdC11c2UtMzI=`); anyone who read them knows it.
const DOCUMENTED_EXAMPLE_KEYS: [[u8; MASTER_KEY_BYTES]; 1] = [*b"example-master-key-do-not-use-32"];

impl MasterKey {
    /// A key from its text: 64 hex digits, or base64 (padded or not) of 32 bytes.
    /// Surrounding whitespace (a file's final newline) is ignored.
    pub fn parse(text: &str) -> Result<MasterKey, MasterKeyError> {
        let text = text.trim();
        let bytes = if text.len() == 2 * MASTER_KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| MasterKeyError::Encoding)?
        } else {
            STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).map_err(|_| MasterKeyError::Encoding)?
        };
        let bytes: [u8; MASTER_KEY_BYTES] =
            bytes.as_slice().try_into().map_err(|_| MasterKeyError::WrongLength { len: bytes.len() })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// A new random key.
    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; MASTER_KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        MasterKey::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; MASTER_KEY_BYTES]) -> MasterKey {
        let digest = Sha256::new().chain_update(KEY_ID_LABEL).chain_update(bytes).finalize();
        MasterKey { bytes, id: hex::encode(&digest[..8]) }
    }

    /// The key's id: 16 hex digits, stored beside every secret it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the key could be guessed: one byte repeated (or few distinct bytes, as a
    /// typed pattern has; 32 random bytes have about 30), or the example key of our docs.
    pub fn is_guessable(&self) -> bool {
        let distinct = self.bytes.iter().collect::<std::collections::BTreeSet<_>>().len();
        distinct < 8 || DOCUMENTED_EXAMPLE_KEYS.contains(&self.bytes)
    }

    /// The key in base64, the form `parse` reads (for the development key file).
    pub fn to_base64(&self) -> Secret {
        Secret::new(STANDARD.encode(self.bytes))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {})", self.id)
    }
}

/// Whose secret a sealed value is: the associated data it is sealed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecretOwner<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) agent: &'a AgentId,
    pub(crate) name: &'a str,
}

/// What a sealed value is bound to: its associated data.
pub(crate) trait SealedFor {
    fn associated_data(&self) -> Vec<u8>;
}

/// A webhook signing secret: of endpoint `whk_…`, or `invocation` for the tenant's
/// secret of per-invocation `webhook_url`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebhookSecretOwner<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) owner: &'a str,
}

impl SealedFor for WebhookSecretOwner<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("{WEBHOOK_AAD_LABEL}\0{}\0{}", self.tenant, self.owner).into_bytes()
    }
}

impl SealedFor for SecretOwner<'_> {
    fn associated_data(&self) -> Vec<u8> {
        // Ids and names hold no NUL (ids are generated, names are variable names).
        format!("{AAD_LABEL}\0{}\0{}\0{}", self.tenant, self.agent, self.name).into_bytes()
    }
}

/// Why a stored secret did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unopenable {
    #[error("it is sealed under master key {key_id}, which this process does not hold")]
    UnknownKey { key_id: String },
    #[error("it does not authenticate under master key {key_id}: altered, or copied from another row")]
    Forged { key_id: String },
}

/// The keys a process seals and opens secrets with.
#[derive(Debug, Clone)]
pub struct MasterKeys {
    current: MasterKey,
    previous: Option<MasterKey>,
}

impl MasterKeys {
    /// `current` seals every write; `previous` (during a rotation) only opens.
    pub fn new(current: MasterKey, previous: Option<MasterKey>) -> MasterKeys {
        let previous = previous.filter(|p| p.id != current.id);
        MasterKeys { current, previous }
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    pub fn previous(&self) -> Option<&MasterKey> {
        self.previous.as_ref()
    }

    /// Seals `value` for `owner` under the current key, with a fresh nonce. It fails
    /// only for inputs of gigabytes (values are capped at 64 KiB).
    pub(crate) fn seal(&self, owner: impl SealedFor, value: &str) -> Result<SealedSecret, chacha20poly1305::Error> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = owner.associated_data();
        let payload = Payload { msg: value.as_bytes(), aad: &aad };
        let ciphertext = self.current.cipher().encrypt(&XNonce::from(nonce), payload)?;
        Ok(SealedSecret { ciphertext, nonce: nonce.to_vec(), key_id: self.current.id.clone() })
    }

    /// Opens a value sealed for `owner` under whichever held key sealed it.
    pub(crate) fn open(&self, owner: impl SealedFor, sealed: &SealedSecret) -> Result<Secret, Unopenable> {
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.id == sealed.key_id)
            .ok_or_else(|| Unopenable::UnknownKey { key_id: sealed.key_id.clone() })?;
        let forged = || Unopenable::Forged { key_id: sealed.key_id.clone() };
        let nonce: [u8; NONCE_BYTES] = sealed.nonce.as_slice().try_into().map_err(|_| forged())?;
        let aad = owner.associated_data();
        let payload = Payload { msg: &sealed.ciphertext, aad: &aad };
        let plain = key.cipher().decrypt(&XNonce::from(nonce), payload).map_err(|_| forged())?;
        // Only valid UTF-8 was ever sealed; anything else did not come from us.
        String::from_utf8(plain).map(Secret::new).map_err(|_| forged())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_byte_a_typed_pattern_or_the_documented_example_is_guessable() {
        let key = |text: &str| MasterKey::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(key(&"00".repeat(32)).is_guessable());
        assert!(key(&"ab".repeat(32)).is_guessable());
        assert!(key(&"0123".repeat(16)).is_guessable());
        assert!(key("ZXhhbXBsZS1tYXN0ZXIta2V5LWRvLW5vdC11c2UtMzI=").is_guessable());
        assert!(!MasterKey::generate().is_guessable());
        assert!(!key(&(0u8..32).map(|b| format!("{:02x}", b * 7)).collect::<String>()).is_guessable());
    }

    fn owner<'a>(tenant: &'a TenantId, agent: &'a AgentId, name: &'a str) -> SecretOwner<'a> {
        SecretOwner { tenant, agent, name }
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_and_nothing_else() {
        let key = MasterKey::generate();
        let base64 = key.to_base64();
        let from_base64 = MasterKey::parse(&format!("{}\n", base64.expose())).unwrap();
        assert_eq!(from_base64.id(), key.id());
        let from_hex = MasterKey::parse(&hex::encode(key.bytes)).unwrap();
        assert_eq!(from_hex.id(), key.id());
        let unpadded = base64.expose().trim_end_matches('=').to_owned();
        assert_eq!(MasterKey::parse(&unpadded).unwrap().id(), key.id());
        assert_eq!(MasterKey::parse(&STANDARD.encode([7u8; 16])).unwrap_err(), MasterKeyError::WrongLength { len: 16 });
        assert_eq!(MasterKey::parse("not a key!").unwrap_err(), MasterKeyError::Encoding);
        assert_eq!(key.id().len(), 16);
        assert_eq!(format!("{key:?}"), format!("MasterKey(id {})", key.id()));
        assert!(!format!("{key:?}").contains(base64.expose()));
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_own_tenant_agent_and_name() {
        let keys = MasterKeys::new(MasterKey::generate(), None);
        let (tenant, agent) = (TenantId::generate(), AgentId::generate());
        let sealed = keys.seal(owner(&tenant, &agent, "API_KEY"), "hunter2 hunter2").unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_BYTES);
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(keys.open(owner(&tenant, &agent, "API_KEY"), &sealed).unwrap().expose(), "hunter2 hunter2");
        let forged = Unopenable::Forged { key_id: keys.current().id().to_owned() };
        assert_eq!(keys.open(owner(&tenant, &agent, "OTHER"), &sealed).unwrap_err(), forged);
        assert_eq!(keys.open(owner(&tenant, &AgentId::generate(), "API_KEY"), &sealed).unwrap_err(), forged);
        assert_eq!(keys.open(owner(&TenantId::generate(), &agent, "API_KEY"), &sealed).unwrap_err(), forged);
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(keys.open(owner(&tenant, &agent, "API_KEY"), &altered).unwrap_err(), forged);
        // Two writes of one value share nothing.
        let again = keys.seal(owner(&tenant, &agent, "API_KEY"), "hunter2 hunter2").unwrap();
        assert_ne!((again.nonce.clone(), again.ciphertext.clone()), (sealed.nonce.clone(), sealed.ciphertext.clone()));
    }

    #[test]
    fn the_previous_key_opens_what_it_sealed_and_an_unknown_key_is_named() {
        let (tenant, agent) = (TenantId::generate(), AgentId::generate());
        let old = MasterKeys::new(MasterKey::generate(), None);
        let sealed = old.seal(owner(&tenant, &agent, "A"), "value").unwrap();
        let rotating = MasterKeys::new(MasterKey::generate(), Some(old.current().clone()));
        assert_eq!(rotating.open(owner(&tenant, &agent, "A"), &sealed).unwrap().expose(), "value");
        assert_eq!(rotating.seal(owner(&tenant, &agent, "A"), "value").unwrap().key_id, rotating.current().id());
        let stranger = MasterKeys::new(MasterKey::generate(), None);
        let unknown = stranger.open(owner(&tenant, &agent, "A"), &sealed).unwrap_err();
        assert_eq!(unknown, Unopenable::UnknownKey { key_id: old.current().id().to_owned() });
    }
}

//! Encryption at rest: the keyring and the sealed-record format.
//!
//! Every value [`super::Store`] writes to RocksDB in encrypted mode is a
//! sealed record:
//!
//! ```text
//! +--------+-------------+-------------+---------------------------+
//! | format | key id      | nonce       | AES-256-GCM ciphertext    |
//! | 1 byte | 4 bytes, BE | 12 bytes    | + 16-byte tag             |
//! +--------+-------------+-------------+---------------------------+
//! ```
//!
//! The nonce is fresh from the operating system's CSPRNG for every record.
//! The associated data binds the record to where it is stored and to its own
//! header: a domain label, the format byte, the key id, the column family
//! name (length-prefixed) and the RocksDB key. A ciphertext copied to another
//! key or column family, or given another key id, fails authentication.
//!
//! Keys are 256-bit and carry a 32-bit id. A keyring holds one current key
//! (used to seal) and any number of older keys (only used to open records
//! sealed before a rotation). Key bytes are wiped from memory when the last
//! clone of a keyring is dropped (the AES key schedules wipe themselves too).
//!
//! The text form of a keyring (key file, `RAFTLIMIT_ENCRYPTION_KEYS`) is
//! documented in `docs/security.md`:
//!
//! ```text
//! # comments and blank lines are ignored; `;` also separates entries
//! current: 2
//! 1: <64 hex digits>
//! 2: <64 hex digits>
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Identifies a key in a keyring; stored in every sealed record.
pub type KeyId = u32;

/// Key length: AES-256.
pub const KEY_LEN: usize = 32;
/// GCM's 96-bit nonce.
pub const NONCE_LEN: usize = 12;
/// GCM's 128-bit tag.
pub const TAG_LEN: usize = 16;
/// The format byte of the current sealed-record layout.
pub const FORMAT_V1: u8 = 1;
/// Format byte, key id and nonce.
pub const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Bytes a sealed record adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The environment variable that may hold a keyring in its text form.
pub const KEYS_ENV: &str = "RAFTLIMIT_ENCRYPTION_KEYS";

/// Separates the associated data of this scheme from any other use of a key.
const AAD_LABEL: &[u8] = b"raftlimit/sealed-record/v1\0";

/// One key: its bytes (kept to write key files) and its ready cipher.
struct KeyEntry {
    secret: Zeroizing<[u8; KEY_LEN]>,
    cipher: Aes256Gcm,
}

/// The encryption keys of a node: one current key that seals new records,
/// and older keys that still open records sealed before a rotation.
///
/// Cloning is cheap and shares the keys. `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    current: KeyId,
    keys: Arc<BTreeMap<KeyId, KeyEntry>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// Where a record lives, for error messages: `logs/#42`, `meta/vote`,
/// or the key in hex when it is not printable.
pub fn record_name(cf: &str, key: &[u8]) -> String {
    if cf == "logs" {
        if let Ok(bytes) = <[u8; 8]>::try_from(key) {
            return format!("logs/#{}", u64::from_be_bytes(bytes));
        }
    }
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        format!("{cf}/{}", String::from_utf8_lossy(key))
    } else {
        format!("{cf}/0x{}", to_hex(key))
    }
}

/// The key id in a sealed record's header, without opening it.
pub fn record_key_id(cf: &str, key: &[u8], record: &[u8]) -> Result<KeyId> {
    if record.len() < OVERHEAD {
        return Err(Error::BadRecord {
            record: record_name(cf, key),
            reason: format!(
                "{} bytes is shorter than the {OVERHEAD}-byte envelope",
                record.len()
            ),
        });
    }
    if record[0] != FORMAT_V1 {
        return Err(Error::BadRecord {
            record: record_name(cf, key),
            reason: format!("unknown format byte {:#04x}", record[0]),
        });
    }
    let mut id = [0u8; 4];
    id.copy_from_slice(&record[1..5]);
    Ok(KeyId::from_be_bytes(id))
}

/// The associated data of a record: label, header fields and location.
fn associated_data(format: u8, key_id: KeyId, cf: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 6 + cf.len() + key.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.push(format);
    aad.extend_from_slice(&key_id.to_be_bytes());
    // Column family names are short fixed names; the length prefix keeps the
    // boundary between name and key unambiguous.
    aad.push(cf.len() as u8);
    aad.extend_from_slice(cf.as_bytes());
    aad.extend_from_slice(key);
    aad
}

impl Keyring {
    /// A keyring of the given keys, sealing with `current`.
    pub fn new(
        current: KeyId,
        keys: impl IntoIterator<Item = (KeyId, [u8; KEY_LEN])>,
    ) -> Result<Keyring> {
        let mut keys: Vec<_> = keys.into_iter().collect();
        let ring = Keyring::from_slice(current, &keys);
        // Wipe the caller's copies that passed through here.
        for (_, bytes) in keys.iter_mut() {
            zeroize::Zeroize::zeroize(bytes);
        }
        ring
    }

    fn from_slice(current: KeyId, keys: &[(KeyId, [u8; KEY_LEN])]) -> Result<Keyring> {
        let mut map = BTreeMap::new();
        for (id, bytes) in keys {
            let secret = Zeroizing::new(*bytes);
            if secret.iter().all(|&b| b == 0) {
                return Err(Error::Keys(format!("key id {id} is all zeros")));
            }
            let cipher = Aes256Gcm::new(&(*secret).into());
            if map.insert(*id, KeyEntry { secret, cipher }).is_some() {
                return Err(Error::Keys(format!("key id {id} appears twice")));
            }
        }
        if map.is_empty() {
            return Err(Error::Keys("no keys".into()));
        }
        if !map.contains_key(&current) {
            return Err(Error::Keys(format!(
                "the current key id {current} is not among the keys"
            )));
        }
        Ok(Keyring {
            current,
            keys: Arc::new(map),
        })
    }

    /// A keyring with one fresh random key.
    pub fn generate(id: KeyId) -> Result<Keyring> {
        Keyring::new(id, [(id, random_key())])
    }

    /// This keyring plus a fresh random key (id one above the highest) that
    /// becomes current. The old keys stay, so records sealed with them open.
    pub fn rotated(&self) -> Result<Keyring> {
        let next = self
            .key_ids()
            .last()
            .and_then(|id| id.checked_add(1))
            .ok_or_else(|| Error::Keys("no key id left above the highest one".into()))?;
        let mut keys = self.entries();
        keys.push((next, random_key()));
        Keyring::new(next, keys)
    }

    /// This keyring without key `id`. The current key cannot be removed.
    pub fn without(&self, id: KeyId) -> Result<Keyring> {
        if id == self.current {
            return Err(Error::Keys(format!(
                "key id {id} is the current key; rotate before removing it"
            )));
        }
        if !self.keys.contains_key(&id) {
            return Err(Error::Keys(format!("key id {id} is not in the keyring")));
        }
        let keys = self.entries().into_iter().filter(|(k, _)| *k != id);
        Keyring::new(self.current, keys)
    }

    fn entries(&self) -> Vec<(KeyId, [u8; KEY_LEN])> {
        self.keys
            .iter()
            .map(|(id, entry)| (*id, *entry.secret))
            .collect()
    }

    /// The id of the key that seals new records.
    pub fn current_key_id(&self) -> KeyId {
        self.current
    }

    /// Every key id, ascending.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.keys().copied().collect()
    }

    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.contains_key(&id)
    }

    /// Parses the text form (see the module documentation). Error messages
    /// name the entry by number and never echo its content.
    pub fn parse(text: &str) -> Result<Keyring> {
        let mut current = None;
        let mut keys = Vec::new();
        let entries = text.lines().enumerate().flat_map(|(line, content)| {
            // A comment runs to the end of its line.
            let content = content.split('#').next().unwrap_or_default();
            let several = content.contains(';');
            content
                .split(';')
                .enumerate()
                .filter_map(move |(n, entry)| {
                    let entry = entry.trim();
                    let at = if several {
                        format!("line {} entry {}", line + 1, n + 1)
                    } else {
                        format!("line {}", line + 1)
                    };
                    (!entry.is_empty()).then_some((at, entry))
                })
        });
        for (at, entry) in entries {
            let Some((name, value)) = entry.split_once(':') else {
                return Err(Error::Keys(format!(
                    "{at}: expected `ID: HEX` or `current: ID`"
                )));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("current") {
                let id = value.parse::<KeyId>().map_err(|_| {
                    Error::Keys(format!(
                        "{at}: `current` needs a key id (0 to {})",
                        KeyId::MAX
                    ))
                })?;
                if current.replace(id).is_some() {
                    return Err(Error::Keys(format!("{at}: `current` is given twice")));
                }
                continue;
            }
            let id = name.parse::<KeyId>().map_err(|_| {
                Error::Keys(format!(
                    "{at}: the key id must be a number from 0 to {}",
                    KeyId::MAX
                ))
            })?;
            let bytes = from_hex_key(value).ok_or_else(|| {
                Error::Keys(format!(
                    "{at} (key id {id}): the key must be exactly {} hex digits",
                    2 * KEY_LEN
                ))
            })?;
            keys.push((id, *bytes));
        }
        let current = match (current, keys.as_slice()) {
            (Some(id), _) => id,
            (None, [(only, _)]) => *only,
            (None, []) => return Err(Error::Keys("no keys".into())),
            (None, _) => {
                return Err(Error::Keys(
                    "several keys but no `current: ID` entry".into(),
                ))
            }
        };
        Keyring::new(current, keys)
    }

    /// The text form, for a key file. Contains the secret keys.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        out.push_str("# raftlimit encryption keys: keep this file secret (mode 0600).\n");
        out.push_str("# `current` seals new records, the other keys only open older ones.\n");
        out.push_str(&format!("current: {}\n", self.current));
        for (id, entry) in self.keys.iter() {
            out.push_str(&format!("{id}: "));
            for b in entry.secret.iter() {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
            out.push('\n');
        }
        out
    }

    /// Seals `plaintext` for storage under `key` in column family `cf` with
    /// the current key and a fresh random nonce.
    pub fn seal(&self, cf: &str, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let entry = self.keys.get(&self.current).ok_or_else(|| {
            Error::Keys(format!("the current key id {} is missing", self.current))
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let aad = associated_data(FORMAT_V1, self.current, cf, key);
        let tag = entry
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce), &aad, (&mut out[HEADER_LEN..]).into())
            .map_err(|_| Error::BadRecord {
                record: record_name(cf, key),
                reason: "too large to encrypt".into(),
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a record sealed by [`Keyring::seal`] for the same `cf` and `key`.
    pub fn open(&self, cf: &str, key: &[u8], record: &[u8]) -> Result<Vec<u8>> {
        let key_id = record_key_id(cf, key, record)?;
        let entry = self.keys.get(&key_id).ok_or_else(|| Error::UnknownKey {
            record: record_name(cf, key),
            key_id,
            known: self.key_ids(),
        })?;
        let nonce = Nonce::try_from(&record[5..HEADER_LEN]).map_err(|_| Error::BadRecord {
            record: record_name(cf, key),
            reason: "bad nonce length".into(),
        })?;
        let body_end = record.len() - TAG_LEN;
        let tag = Tag::try_from(&record[body_end..]).map_err(|_| Error::BadRecord {
            record: record_name(cf, key),
            reason: "bad tag length".into(),
        })?;
        let mut plaintext = record[HEADER_LEN..body_end].to_vec();
        let aad = associated_data(record[0], key_id, cf, key);
        entry
            .cipher
            .decrypt_inout_detached(&nonce, &aad, plaintext.as_mut_slice().into(), &tag)
            .map_err(|_| Error::Unauthentic {
                record: record_name(cf, key),
                key_id,
            })?;
        Ok(plaintext)
    }
}

fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

fn from_hex_key(text: &str) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let digits = text.as_bytes();
    if digits.len() != 2 * KEY_LEN {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ring(current: KeyId, ids: &[KeyId]) -> Keyring {
        let keys = ids.iter().map(|&id| (id, [id as u8 ^ 0x5a; KEY_LEN]));
        Keyring::new(current, keys).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips() {
        let ring = Keyring::generate(7).unwrap();
        for plaintext in [&b""[..], b"x", &[0xab; 10_000]] {
            let sealed = ring.seal("logs", &5u64.to_be_bytes(), plaintext).unwrap();
            assert_eq!(sealed.len(), plaintext.len() + OVERHEAD);
            assert_eq!(
                ring.open("logs", &5u64.to_be_bytes(), &sealed).unwrap(),
                plaintext
            );
        }
    }

    #[test]
    fn ciphertext_hides_the_plaintext_and_nonces_are_fresh() {
        let ring = Keyring::generate(1).unwrap();
        let plaintext = b"secret-marker-secret-marker";
        let a = ring.seal("meta", b"vote", plaintext).unwrap();
        let b = ring.seal("meta", b"vote", plaintext).unwrap();
        assert_ne!(a, b, "same plaintext seals differently");
        assert_ne!(a[5..HEADER_LEN], b[5..HEADER_LEN], "fresh nonce per record");
        for sealed in [&a, &b] {
            assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext));
        }
    }

    #[test]
    fn header_carries_format_and_key_id() {
        let ring = ring(0x0102_0304, &[1, 0x0102_0304]);
        let sealed = ring.seal("snapshot", b"current", b"data").unwrap();
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(&sealed[1..5], &[1, 2, 3, 4]);
        assert_eq!(
            record_key_id("snapshot", b"current", &sealed).unwrap(),
            0x0102_0304
        );
    }

    #[test]
    fn associated_data_binds_column_family_and_key() {
        let ring = Keyring::generate(1).unwrap();
        let sealed = ring.seal("meta", b"vote", b"v").unwrap();
        // Moved to another key of the same column family.
        let err = ring.open("meta", b"committed", &sealed).unwrap_err();
        assert!(
            matches!(err, Error::Unauthentic { ref record, key_id: 1 } if record == "meta/committed"),
            "{err}"
        );
        // Moved to the same key in another column family.
        let err = ring.open("snapshot", b"vote", &sealed).unwrap_err();
        assert!(matches!(err, Error::Unauthentic { .. }), "{err}");
        // Log entries cannot be swapped between indexes.
        let e5 = ring
            .seal("logs", &5u64.to_be_bytes(), b"entry five")
            .unwrap();
        let err = ring.open("logs", &6u64.to_be_bytes(), &e5).unwrap_err();
        assert!(err.to_string().contains("logs/#6"), "{err}");
        // The cf/key boundary is unambiguous.
        let s = ring.seal("ab", b"c", b"v").unwrap();
        assert!(ring.open("a", b"bc", &s).is_err());
    }

    #[test]
    fn any_flipped_bit_fails_authentication() {
        let ring = ring(1, &[1]);
        let sealed = ring.seal("meta", b"vote", b"some vote").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = ring.open("meta", b"vote", &bad).unwrap_err();
            match i {
                0 => assert!(matches!(err, Error::BadRecord { .. }), "byte {i}: {err}"),
                // The key id changes to one the ring does not hold.
                1..=4 => assert!(matches!(err, Error::UnknownKey { .. }), "byte {i}: {err}"),
                _ => assert!(matches!(err, Error::Unauthentic { .. }), "byte {i}: {err}"),
            }
        }
        let err = ring
            .open("meta", b"vote", &sealed[..OVERHEAD - 1])
            .unwrap_err();
        assert!(matches!(err, Error::BadRecord { .. }), "{err}");
    }

    #[test]
    fn a_key_id_change_is_not_accepted_even_when_the_ring_holds_that_id() {
        let ring = ring(1, &[1, 2]);
        let mut sealed = ring.seal("meta", b"vote", b"v").unwrap();
        sealed[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert!(matches!(
            ring.open("meta", b"vote", &sealed),
            Err(Error::Unauthentic { key_id: 2, .. })
        ));
    }

    #[test]
    fn unknown_key_id_is_named() {
        let a = ring(1, &[1]);
        let b = ring(2, &[2]);
        let sealed = a.seal("snapshot", b"current", b"snap").unwrap();
        let err = b.open("snapshot", b"current", &sealed).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey { ref record, key_id: 1, ref known } if record == "snapshot/current" && known == &[2]),
            "{err}"
        );
        assert!(err.to_string().contains("key id 1"), "{err}");
    }

    #[test]
    fn a_different_key_under_the_same_id_fails_authentication() {
        let right = Keyring::generate(1).unwrap();
        let wrong = Keyring::generate(1).unwrap();
        let sealed = right.seal("meta", b"vote", b"v").unwrap();
        assert!(matches!(
            wrong.open("meta", b"vote", &sealed),
            Err(Error::Unauthentic { key_id: 1, .. })
        ));
    }

    #[test]
    fn rotation_seals_with_the_new_key_and_opens_with_both() {
        let a = Keyring::generate(1).unwrap();
        let old = a.seal("logs", &1u64.to_be_bytes(), b"old").unwrap();
        let ab = a.rotated().unwrap();
        assert_eq!(ab.current_key_id(), 2);
        assert_eq!(ab.key_ids(), vec![1, 2]);
        let new = ab.seal("logs", &2u64.to_be_bytes(), b"new").unwrap();
        assert_eq!(record_key_id("logs", &[], &new).unwrap(), 2);
        assert_eq!(ab.open("logs", &1u64.to_be_bytes(), &old).unwrap(), b"old");
        assert_eq!(ab.open("logs", &2u64.to_be_bytes(), &new).unwrap(), b"new");
        // Once the old key is removed, old records are refused, new ones open.
        let b = ab.without(1).unwrap();
        assert!(matches!(
            b.open("logs", &1u64.to_be_bytes(), &old),
            Err(Error::UnknownKey { key_id: 1, .. })
        ));
        assert_eq!(b.open("logs", &2u64.to_be_bytes(), &new).unwrap(), b"new");
        assert!(ab.without(2).is_err(), "the current key cannot be removed");
        assert!(ab.without(9).is_err());
    }

    #[test]
    fn text_form_round_trips() {
        let ring = Keyring::generate(3).unwrap().rotated().unwrap();
        let text = ring.to_text();
        let parsed = Keyring::parse(&text).unwrap();
        assert_eq!(parsed.current_key_id(), 4);
        assert_eq!(parsed.key_ids(), vec![3, 4]);
        let sealed = ring.seal("meta", b"k", b"v").unwrap();
        assert_eq!(parsed.open("meta", b"k", &sealed).unwrap(), b"v");
        // One line, as in an environment variable.
        let line = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(";");
        assert_eq!(Keyring::parse(&line).unwrap().key_ids(), vec![3, 4]);
        let err = Keyring::parse(&format!("{line};junk"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1 entry 4"), "{err}");
        // Comments may follow an entry.
        let commented = text.replace("current: 4", "current: 4 # since the rotation");
        assert_eq!(Keyring::parse(&commented).unwrap().current_key_id(), 4);
    }

    #[test]
    fn a_single_key_is_current_without_saying_so() {
        let ring = Keyring::parse(&format!("  9 : {}  ", "ab".repeat(32))).unwrap();
        assert_eq!(ring.current_key_id(), 9);
    }

    #[test]
    fn malformed_text_is_refused_without_echoing_keys() {
        let k = "c0ffee".repeat(10) + "abcd";
        let cases = [
            (String::new(), "no keys"),
            (format!("1: {k}\n2: {k}"), "no `current"),
            (format!("current: 3\n1: {k}"), "current key id 3"),
            (format!("1: {k}\n1: {k}\ncurrent: 1"), "twice"),
            (format!("1: {}", &k[..62]), "64 hex digits"),
            (format!("1: {}zz", &k[..62]), "64 hex digits"),
            (format!("x: {k}"), "key id must be a number"),
            (format!("1 {k}"), "expected"),
            (format!("1: {}", "0".repeat(64)), "all zeros"),
        ];
        for (text, expect) in cases {
            let err = Keyring::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
            assert!(!err.contains("c0ffee"), "error echoes key material: {err}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring = Keyring::new(1, [(1, [0xee; KEY_LEN])]).unwrap();
        let debug = format!("{ring:?}");
        assert_eq!(debug, "Keyring { current: 1, key_ids: [1] }");
    }

    #[test]
    fn record_names_are_readable() {
        assert_eq!(record_name("logs", &42u64.to_be_bytes()), "logs/#42");
        assert_eq!(record_name("meta", b"vote"), "meta/vote");
        assert_eq!(record_name("meta", &[0, 1]), "meta/0x0001");
    }
}

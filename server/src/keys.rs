//! Key files for encryption at rest: reading one when a node starts, and
//! creating, rotating and pruning one for the `keygen` subcommand.
//!
//! The format is the keyring's text form (`docs/security.md`):
//! `current: ID` and one `ID: HEX` line per key. Files are written with mode
//! 0600, and a rewrite goes through a temporary file and a rename, so a crash
//! never leaves a half-written key file.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use raftlimit_raft::storage::{KeyId, Keyring};
use zeroize::Zeroizing;

use crate::error::ServerError;

fn key_error(path: &Path, what: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("key file {}: {what}", path.display()))
}

/// Reads and parses a key file. Warns when group or others may read it.
pub fn load_key_file(path: &Path) -> Result<Keyring, ServerError> {
    let meta = std::fs::metadata(path).map_err(|e| key_error(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:04o}"),
            "the encryption key file is readable by group or others; chmod 600 it"
        );
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| key_error(path, e))?);
    Keyring::parse(&text).map_err(|e| key_error(path, e))
}

/// Writes `ring` to `path` with mode 0600. Without `replace`, an existing
/// file is an error; with it, the file is replaced atomically.
pub fn write_key_file(path: &Path, ring: &Keyring, replace: bool) -> Result<(), ServerError> {
    let text = ring.to_text();
    let write = |target: &Path| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    if !replace {
        return write(path).map_err(|e| key_error(path, e));
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover from an interrupted rewrite.
    if let Err(e) = std::fs::remove_file(&tmp) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(key_error(&tmp, e));
        }
    }
    write(&tmp).map_err(|e| key_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| key_error(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| key_error(path, e))?;
    }
    Ok(())
}

/// Creates a key file holding one new random key with id 1.
pub fn create_key_file(path: &Path) -> Result<Keyring, ServerError> {
    if path.exists() {
        return Err(key_error(
            path,
            "already exists; `keygen --rotate` adds a key to it, and nothing overwrites one",
        ));
    }
    let ring = Keyring::generate(1)?;
    write_key_file(path, &ring, false)?;
    Ok(ring)
}

/// Adds a new random key to a key file and makes it current.
pub fn rotate_key_file(path: &Path) -> Result<Keyring, ServerError> {
    let ring = load_key_file(path)?.rotated()?;
    write_key_file(path, &ring, true)?;
    Ok(ring)
}

/// Removes a key that is no longer needed (never the current one).
pub fn remove_key(path: &Path, id: KeyId) -> Result<Keyring, ServerError> {
    let ring = load_key_file(path)?.without(id)?;
    write_key_file(path, &ring, true)?;
    Ok(ring)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn create_rotate_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let first = create_key_file(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            create_key_file(&path).is_err(),
            "never overwrites a key file"
        );
        let sealed = first.seal("meta", b"vote", b"v").unwrap();

        let rotated = rotate_key_file(&path).unwrap();
        assert_eq!(
            (rotated.current_key_id(), rotated.key_ids()),
            (2, vec![1, 2])
        );
        let loaded = load_key_file(&path).unwrap();
        assert_eq!(loaded.open("meta", b"vote", &sealed).unwrap(), b"v");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        assert!(remove_key(&path, 2).is_err(), "the current key stays");
        let pruned = remove_key(&path, 1).unwrap();
        assert_eq!(pruned.key_ids(), vec![2]);
        assert_eq!(load_key_file(&path).unwrap().key_ids(), vec![2]);
        assert!(!dir.path().join("keys.tmp").exists());
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        let err = load_key_file(&path).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        std::fs::write(&path, "1: nothex").unwrap();
        let err = load_key_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("missing") && err.contains("hex digits"),
            "{err}"
        );
    }
}

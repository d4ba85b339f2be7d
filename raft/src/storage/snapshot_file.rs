//! Snapshot files: a state-machine image written as a stream of chunks, each
//! sealed with the node's keyring when encryption at rest is on, or carrying
//! a CRC32 when it is not.
//!
//! Why files and not a RocksDB value: an image of a million keys is tens of
//! megabytes; as one value it went through RocksDB's WAL and memtable (twice
//! its size in memory, more on disk) and had to be built whole in memory
//! first. Here the image is serialized straight into the file, a chunk at a
//! time, off the async runtime, and the file replaces the previous one by an
//! atomic rename once it is synced. Backups use the same format.
//!
//! Layout: the 8-byte magic, a flag byte (1 = sealed), a 16-byte random file
//! id, then chunks `[last: u8][len: u32 BE][body]`, where `body` is the sealed
//! record (associated data: the file id, the chunk's index and `last`, so
//! chunks can be neither reordered, dropped, nor moved between files) or the
//! plaintext followed by its CRC32. The plaintext stream is the postcard
//! encoding of the snapshot's metadata followed by the image.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::crypto::Keyring;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"RLSNAP1\n";
/// Plaintext bytes per chunk.
const CHUNK: usize = 1 << 20;
/// The largest chunk body a reader accepts (a sealed full chunk plus room).
const MAX_BODY: usize = CHUNK + 4096;
/// The column-family label sealed chunks are bound to.
const SEAL_LABEL: &str = "snapshot-file";

/// Writes one snapshot file. Dropping it without [`ChunkWriter::finish`]
/// leaves an incomplete temporary file that [`SnapshotDir::publish`] never
/// sees and the next write replaces.
pub struct ChunkWriter {
    out: BufWriter<File>,
    keyring: Option<Keyring>,
    file_id: [u8; 16],
    buf: Vec<u8>,
    index: u64,
    written: u64,
}

impl ChunkWriter {
    fn create(path: &Path, keyring: Option<Keyring>) -> Result<Self> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(CHUNK + 64, file);
        let mut file_id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut file_id);
        out.write_all(MAGIC)?;
        out.write_all(&[u8::from(keyring.is_some())])?;
        out.write_all(&file_id)?;
        Ok(ChunkWriter {
            out,
            keyring,
            file_id,
            buf: Vec::with_capacity(CHUNK),
            index: 0,
            written: 0,
        })
    }

    fn emit(&mut self, last: bool) -> Result<()> {
        let body = match &self.keyring {
            Some(ring) => ring.seal(
                SEAL_LABEL,
                &chunk_name(&self.file_id, self.index, last),
                &self.buf,
            )?,
            None => {
                let mut body = std::mem::take(&mut self.buf);
                let crc = crc32fast::hash(&body);
                body.extend_from_slice(&crc.to_be_bytes());
                body
            }
        };
        self.out.write_all(&[u8::from(last)])?;
        self.out.write_all(&(body.len() as u32).to_be_bytes())?;
        self.out.write_all(&body)?;
        self.written += body.len() as u64 + 5;
        self.index += 1;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last chunk and syncs the file. Returns the file's size.
    fn finish(mut self) -> Result<u64> {
        self.emit(true)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::Io(e.into_error()))?;
        file.sync_all()?;
        Ok(self.written + 25)
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let take = room.min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK {
            self.emit(false).map_err(io::Error::other)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The name a chunk is sealed under (and errors call it): the file's id, the
/// chunk's index and whether it is the last.
fn chunk_name(file_id: &[u8; 16], index: u64, last: bool) -> Vec<u8> {
    let id: String = file_id.iter().map(|b| format!("{b:02x}")).collect();
    let last = if last { "/last" } else { "" };
    format!("{id}/chunk-{index}{last}").into_bytes()
}

/// Reads a snapshot file's plaintext stream back, checking every chunk.
pub fn read_file(path: &Path, keyring: Option<&Keyring>) -> Result<Vec<u8>> {
    let bad = |reason: &str| Error::Snapshot(format!("{}: {reason}", path.display()));
    let mut input = BufReader::new(File::open(path)?);
    let mut header = [0u8; 25];
    input
        .read_exact(&mut header)
        .map_err(|_| bad("truncated header"))?;
    if &header[..8] != MAGIC {
        return Err(bad("not a raftlimit snapshot file"));
    }
    let sealed = match header[8] {
        0 => false,
        1 => true,
        _ => return Err(bad("unknown flags")),
    };
    let mut file_id = [0u8; 16];
    file_id.copy_from_slice(&header[9..25]);
    let ring = match (sealed, keyring) {
        (true, Some(ring)) => Some(ring),
        (true, None) => return Err(bad("sealed, and no encryption key is configured")),
        (false, Some(_)) => return Err(bad("not sealed, but encryption at rest is on")),
        (false, None) => None,
    };
    let mut plain = Vec::new();
    for index in 0u64.. {
        let mut head = [0u8; 5];
        input
            .read_exact(&mut head)
            .map_err(|_| bad("truncated: the last chunk is missing"))?;
        let last = match head[0] {
            0 => false,
            1 => true,
            _ => return Err(bad("bad chunk header")),
        };
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(4..=MAX_BODY).contains(&len) {
            return Err(bad("bad chunk length"));
        }
        let mut body = vec![0u8; len];
        input
            .read_exact(&mut body)
            .map_err(|_| bad("truncated chunk"))?;
        match ring {
            Some(ring) => {
                let chunk = ring.open(SEAL_LABEL, &chunk_name(&file_id, index, last), &body)?;
                plain.extend_from_slice(&chunk);
            }
            None => {
                let (data, crc) = body.split_at(len - 4);
                if crc32fast::hash(data).to_be_bytes() != crc {
                    return Err(bad(&format!("chunk {index} fails its checksum")));
                }
                plain.extend_from_slice(data);
            }
        }
        if last {
            let mut rest = [0u8; 1];
            if input.read(&mut rest)? != 0 {
                return Err(bad("data after the last chunk"));
            }
            return Ok(plain);
        }
    }
    Err(bad("too many chunks"))
}

/// The key id the first chunk of a sealed file is sealed with (`None` for a
/// plaintext file).
pub fn sealed_with(path: &Path) -> Result<Option<super::KeyId>> {
    let mut input = BufReader::new(File::open(path)?);
    let mut header = [0u8; 25 + 5];
    input.read_exact(&mut header)?;
    if header[8] == 0 {
        return Ok(None);
    }
    let mut record = [0u8; 5];
    input.read_exact(&mut record)?;
    Ok(Some(u32::from_be_bytes([
        record[1], record[2], record[3], record[4],
    ])))
}

/// The directory holding a node's current snapshot file.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    const CURRENT: &'static str = "current.snap";
    const PARTIAL: &'static str = "partial.snap.tmp";

    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)?;
        // A write cut short by a crash leaves only the temporary file.
        let _ = fs::remove_file(dir.join(Self::PARTIAL));
        Ok(SnapshotDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn current(&self) -> Option<PathBuf> {
        let path = self.dir.join(Self::CURRENT);
        path.exists().then_some(path)
    }

    /// Writes a new snapshot with `write` filling the plaintext stream, then
    /// makes it the current one (rename, then a sync of the directory).
    /// Blocking: run it off the async runtime. Returns the file's size.
    pub fn publish(
        &self,
        keyring: Option<Keyring>,
        write: impl FnOnce(&mut ChunkWriter) -> Result<()>,
    ) -> Result<u64> {
        let partial = self.dir.join(Self::PARTIAL);
        let mut writer = ChunkWriter::create(&partial, keyring)?;
        write(&mut writer)?;
        let size = writer.finish()?;
        fs::rename(&partial, self.dir.join(Self::CURRENT))?;
        File::open(&self.dir)?.sync_all()?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(keyring: Option<Keyring>, size: usize) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir()?;
        let snaps = SnapshotDir::open(dir.path())?;
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        snaps.publish(keyring.clone(), |w| Ok(w.write_all(&data)?))?;
        let path = snaps
            .current()
            .ok_or_else(|| Error::Snapshot("missing".into()))?;
        let back = read_file(&path, keyring.as_ref())?;
        assert_eq!(back, data);
        Ok(fs::read(&path)?)
    }

    #[test]
    fn plain_and_sealed_files_round_trip_at_chunk_boundaries() -> Result<()> {
        let ring = Keyring::generate(7)?;
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            round_trip(None, size)?;
            let sealed = round_trip(Some(ring.clone()), size)?;
            if size > 64 {
                let marker: Vec<u8> = (0..32).map(|i| (i % 251) as u8).collect();
                assert!(!sealed.windows(32).any(|w| w == marker), "plaintext leaked");
            }
        }
        Ok(())
    }

    #[test]
    fn damaged_files_are_refused() -> Result<()> {
        let ring = Keyring::generate(1)?;
        for keyring in [None, Some(ring)] {
            let dir = tempfile::tempdir()?;
            let snaps = SnapshotDir::open(dir.path())?;
            let data = vec![42u8; 2 * CHUNK + 5];
            snaps.publish(keyring.clone(), |w| Ok(w.write_all(&data)?))?;
            let path = snaps
                .current()
                .ok_or_else(|| Error::Snapshot("missing".into()))?;
            let good = fs::read(&path)?;
            // A flipped byte in the middle, a cut tail, a dropped last chunk.
            let mut flipped = good.clone();
            flipped[CHUNK] ^= 1;
            let cut = good[..good.len() - 3].to_vec();
            let first_two = good[..25
                + 2 * (CHUNK
                    + 5
                    + if keyring.is_some() {
                        crate::storage::crypto::OVERHEAD
                    } else {
                        4
                    })]
                .to_vec();
            for bad in [flipped, cut, first_two] {
                fs::write(&path, &bad)?;
                assert!(read_file(&path, keyring.as_ref()).is_err());
            }
            fs::write(&path, &good)?;
            assert!(read_file(&path, keyring.as_ref()).is_ok());
            // The wrong mode is refused either way.
            let other = if keyring.is_some() {
                None
            } else {
                Some(Keyring::generate(2)?)
            };
            assert!(read_file(&path, other.as_ref()).is_err());
        }
        Ok(())
    }
}

//! The serialized form of the applied state inside a snapshot. Storing,
//! sealing and shipping the bytes is the raft crate's job; what they contain
//! (and how older layouts are read) is here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::dedup::DedupTable;
use super::AppliedState;
use crate::acl::{AclTable, User};
use crate::commands::limiter::Policy;
use crate::commands::Dataset;
use crate::error::Error;
use crate::keyspace::{Entry as KeyEntry, Keyspace, KeyspaceImage, Versions};
use crate::payload::RequestId;
use crate::reply::Reply;

/// The version of the image layout below, written first in every snapshot
/// file. Snapshots stored by older versions (as one RocksDB value, without a
/// version) are read through [`LegacyImage`].
pub const IMAGE_VERSION: u16 = 2;

/// A snapshot's data, taken under the state lock in O(keys) pointer copies
/// (the keyspace) plus the de-duplication table already encoded, and
/// serialized afterwards without the lock.
pub struct Capture {
    last_stamp_ns: u64,
    keyspace: KeyspaceImage,
    policies: BTreeMap<String, Policy>,
    scripts: BTreeMap<String, Bytes>,
    versions: Versions,
    /// `DedupTable` as postcard: encoding it is faster than copying it.
    dedup: Vec<u8>,
    /// Runtime ACL changes; passwords only as SHA-256 hashes.
    acl: BTreeMap<String, Option<Arc<User>>>,
}

impl Capture {
    pub(super) fn of(state: &AppliedState) -> Result<Self, Error> {
        Ok(Capture {
            last_stamp_ns: state.last_stamp_ns,
            keyspace: state.data.keyspace.image(),
            policies: state.data.policies.clone(),
            scripts: state.data.scripts.clone(),
            versions: state.data.keyspace.versions(),
            dedup: postcard::to_stdvec(&state.dedup).map_err(Error::encode("dedup table"))?,
            acl: state.data.acl.overrides().clone(),
        })
    }

    /// Writes the image as [`Image`] reads it (the caller writes the version
    /// and its own metadata first).
    pub fn write_image(&self, out: &mut (impl std::io::Write + ?Sized)) -> Result<(), Error> {
        let enc = Error::encode("snapshot");
        postcard::to_io(&self.last_stamp_ns, &mut *out).map_err(enc)?;
        postcard::to_io(&self.keyspace, &mut *out).map_err(Error::encode("snapshot keys"))?;
        postcard::to_io(&self.policies, &mut *out).map_err(Error::encode("snapshot policies"))?;
        postcard::to_io(&self.scripts, &mut *out).map_err(Error::encode("snapshot scripts"))?;
        postcard::to_io(&self.versions, &mut *out).map_err(Error::encode("snapshot versions"))?;
        out.write_all(&self.dedup)?;
        postcard::to_io(&self.acl, &mut *out).map_err(Error::encode("snapshot acl"))?;
        Ok(())
    }

    /// The image as bytes (for a follower that needs the snapshot now).
    pub fn image_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write_image(&mut out)?;
        Ok(out)
    }
}

#[derive(Deserialize)]
struct Image {
    last_stamp_ns: u64,
    keyspace: Vec<(Bytes, KeyEntry)>,
    policies: BTreeMap<String, Policy>,
    scripts: BTreeMap<String, Bytes>,
    versions: Versions,
    dedup: DedupTable,
    acl: BTreeMap<String, Option<Arc<User>>>,
}

/// The de-duplication table before ids from client tokens had a queue of
/// their own.
#[derive(Deserialize)]
struct LegacyDedup {
    replies: HashMap<RequestId, Reply>,
    order: VecDeque<(u64, RequestId)>,
}

/// An image as versions before [`IMAGE_VERSION`] 2 stored it.
#[derive(Deserialize)]
struct LegacyImage {
    last_stamp_ns: u64,
    keyspace: Vec<(Bytes, KeyEntry)>,
    policies: BTreeMap<String, Policy>,
    scripts: BTreeMap<String, Bytes>,
    versions: Versions,
    dedup: LegacyDedup,
    acl: BTreeMap<String, Option<Arc<User>>>,
}

impl From<LegacyImage> for Image {
    fn from(old: LegacyImage) -> Self {
        let mut dedup = DedupTable {
            replies: old.dedup.replies,
            ..DedupTable::default()
        };
        for (stamp, id) in old.dedup.order {
            if id.is_from_token() {
                dedup.token_order.push_back((stamp, id));
            } else {
                dedup.order.push_back((stamp, id));
            }
        }
        Image {
            last_stamp_ns: old.last_stamp_ns,
            keyspace: old.keyspace,
            policies: old.policies,
            scripts: old.scripts,
            versions: old.versions,
            dedup,
            acl: old.acl,
        }
    }
}

/// Replaces `state`'s content with an image of layout `version`.
pub(super) fn restore(state: &mut AppliedState, version: u16, data: &[u8]) -> Result<(), Error> {
    let image: Image = match version {
        1 => postcard::from_bytes::<LegacyImage>(data)
            .map_err(Error::decode("snapshot data"))?
            .into(),
        IMAGE_VERSION => postcard::from_bytes(data).map_err(Error::decode("snapshot data"))?,
        other => {
            return Err(Error::Snapshot(format!(
                "image version {other} is newer than this build reads ({IMAGE_VERSION}); upgrade the node"
            )))
        }
    };
    let mut acl = AclTable::new(state.data.acl.base().clone());
    acl.set_overrides(image.acl);
    state.data = Dataset {
        keyspace: Keyspace::from_entries(image.keyspace, image.versions),
        policies: image.policies,
        scripts: image.scripts,
        acl,
    };
    state.last_stamp_ns = image.last_stamp_ns;
    state.dedup = image.dedup;
    Ok(())
}

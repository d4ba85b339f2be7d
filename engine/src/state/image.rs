//! The serialized form of the applied state inside a snapshot. Storing and
//! shipping the bytes is the raft crate's job; what they contain is here.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::dedup::DedupTable;
use super::AppliedState;
use crate::acl::{AclTable, User};
use crate::commands::limiter::Policy;
use crate::commands::Dataset;
use crate::error::Error;
use crate::keyspace::{Entry as KeyEntry, Keyspace, Versions};

/// The serialized form of a snapshot's data.
#[derive(Serialize)]
struct ImageRef<'a> {
    last_stamp_ns: u64,
    #[serde(serialize_with = "serialize_keyspace")]
    keyspace: &'a Keyspace,
    policies: &'a BTreeMap<String, Policy>,
    scripts: &'a BTreeMap<String, Bytes>,
    versions: Versions,
    dedup: &'a DedupTable,
    /// Runtime ACL changes; passwords only as SHA-256 hashes.
    acl: &'a BTreeMap<String, Option<Arc<User>>>,
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

fn serialize_keyspace<S: serde::Serializer>(ks: &&Keyspace, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ks.entries())
}

/// The snapshot image of `state`.
pub(super) fn encode(state: &AppliedState) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(&ImageRef {
        last_stamp_ns: state.last_stamp_ns,
        keyspace: &state.data.keyspace,
        policies: &state.data.policies,
        scripts: &state.data.scripts,
        versions: state.data.keyspace.versions(),
        dedup: &state.dedup,
        acl: state.data.acl.overrides(),
    })
    .map_err(Error::encode("snapshot data"))
}

/// Replaces `state`'s content with a snapshot image's.
pub(super) fn restore(state: &mut AppliedState, data: &[u8]) -> Result<(), Error> {
    let image: Image = postcard::from_bytes(data).map_err(Error::decode("snapshot data"))?;
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

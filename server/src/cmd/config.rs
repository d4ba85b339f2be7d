//! CONFIG GET (from the real configuration) and CONFIG RESETSTAT.

use bytes::Bytes;
use raftlimit_engine::{glob_match, Reply};

use super::{subcommand, unknown_subcommand};
use crate::session::Session;
use crate::shared::Shared;

pub fn config(_session: &mut Session, shared: &Shared, argv: &[Bytes]) -> Reply {
    match subcommand(argv).as_str() {
        "get" if argv.len() >= 3 => {
            let mut params = shared.config.redis_parameters();
            params.sort_by_key(|(name, _)| *name);
            let mut pairs = Vec::new();
            for (name, value) in &params {
                if argv[2..]
                    .iter()
                    .any(|pattern| glob_match(&pattern.to_ascii_lowercase(), name.as_bytes()))
                {
                    pairs.push((Reply::bulk(*name), Reply::bulk(value.clone().into_bytes())));
                }
            }
            Reply::Map(pairs)
        }
        "get" => Reply::error("ERR wrong number of arguments for 'config|get' command"),
        "set" => Reply::error(
            "ERR CONFIG SET is not supported: change the configuration file and restart the node",
        ),
        "resetstat" => Reply::Ok,
        _ => unknown_subcommand("config", argv),
    }
}

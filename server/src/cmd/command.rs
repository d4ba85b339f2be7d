//! COMMAND, COMMAND COUNT, COMMAND INFO and COMMAND DOCS, answered from the
//! engine's command table (which holds every command's spec).

use bytes::Bytes;
use raftlimit_engine::{all_specs, lookup, CommandSpec, Reply};

use super::{subcommand, unknown_subcommand};
use crate::session::Session;
use crate::shared::Shared;

fn every_command() -> &'static [CommandSpec] {
    all_specs()
}

fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup(name)
}

fn info_reply(c: &CommandSpec) -> Reply {
    let (first_key, last_key, step) = c.key_positions();
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(c.flags.iter().map(|f| Reply::status(*f)).collect()),
        Reply::Int(first_key as i64),
        Reply::Int(last_key as i64),
        Reply::Int(step as i64),
        Reply::Set(
            c.categories
                .iter()
                .map(|c| Reply::status(format!("@{c}")))
                .collect(),
        ),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn docs_reply(c: &CommandSpec) -> Reply {
    let group = c
        .categories
        .iter()
        .find(|cat| {
            !matches!(
                **cat,
                "read" | "write" | "fast" | "slow" | "dangerous" | "keyspace"
            )
        })
        // The ACL category is `sortedset`, the documentation group `sorted-set`.
        .map(|&cat| {
            if cat == "sortedset" {
                "sorted-set"
            } else {
                cat
            }
        })
        .unwrap_or("generic");
    Reply::Map(vec![
        (
            Reply::bulk("summary"),
            Reply::bulk(format!("The {} command", c.name.to_ascii_uppercase())),
        ),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(group)),
    ])
}

pub fn command(_session: &mut Session, _shared: &Shared, argv: &[Bytes]) -> Reply {
    if argv.len() == 1 {
        return Reply::Array(every_command().iter().map(info_reply).collect());
    }
    match subcommand(argv).as_str() {
        "count" if argv.len() == 2 => Reply::Int(every_command().len() as i64),
        "info" => {
            if argv.len() == 2 {
                return Reply::Array(every_command().iter().map(info_reply).collect());
            }
            Reply::Array(
                argv[2..]
                    .iter()
                    .map(|name| find(name).map_or(Reply::Nil, info_reply))
                    .collect(),
            )
        }
        "docs" => {
            let selected: Vec<&CommandSpec> = if argv.len() == 2 {
                every_command().iter().collect()
            } else {
                argv[2..].iter().filter_map(|name| find(name)).collect()
            };
            Reply::Map(
                selected
                    .iter()
                    .map(|c| (Reply::bulk(c.name), docs_reply(c)))
                    .collect(),
            )
        }
        "list" => Reply::Array(
            every_command()
                .iter()
                .map(|c| Reply::bulk(c.name))
                .collect(),
        ),
        _ => unknown_subcommand("command", argv),
    }
}

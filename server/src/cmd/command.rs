//! COMMAND, COMMAND COUNT, COMMAND INFO and COMMAND DOCS, answered from the
//! keyspace command table and the connection command table.

use bytes::Bytes;
use raftlimit_engine::{all_specs, Spec};
use raftlimit_engine::Reply;

use super::{subcommand, unknown_subcommand, LocalSpec, Session};
use crate::shared::Shared;

/// A command as COMMAND reports it.
struct Described {
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    first_key: i32,
    last_key: i32,
    step: i32,
    categories: &'static [&'static str],
}

impl From<&Spec> for Described {
    fn from(s: &Spec) -> Self {
        Described {
            name: s.name,
            arity: s.arity,
            flags: s.flags,
            first_key: s.first_key,
            last_key: s.last_key,
            step: s.step,
            categories: s.categories,
        }
    }
}

impl From<&LocalSpec> for Described {
    fn from(s: &LocalSpec) -> Self {
        Described {
            name: s.name,
            arity: s.arity,
            flags: s.flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            categories: s.categories,
        }
    }
}

fn every_command() -> Vec<Described> {
    let mut all: Vec<Described> = all_specs().iter().map(Described::from).collect();
    all.extend(super::raft::MEMBERSHIP_SPECS.iter().map(Described::from));
    all.extend(super::all().iter().map(Described::from));
    all
}

fn find(name: &[u8]) -> Option<Described> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    every_command().into_iter().find(|c| c.name == name)
}

fn info_reply(c: &Described) -> Reply {
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(c.flags.iter().map(|f| Reply::status(*f)).collect()),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.step as i64),
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

fn docs_reply(c: &Described) -> Reply {
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
                    .map(|name| find(name).map_or(Reply::Nil, |c| info_reply(&c)))
                    .collect(),
            )
        }
        "docs" => {
            let selected: Vec<Described> = if argv.len() == 2 {
                every_command()
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

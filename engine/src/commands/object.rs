//! Introspection of one key: OBJECT (ENCODING, REFCOUNT, FREQ, IDLETIME, HELP)
//! and MEMORY (USAGE, HELP).
//!
//! OBJECT ENCODING names the representation raftlimit really uses: strings
//! say `int` or `raw` as Redis would (there is no `embstr`: every string is
//! one reference-counted byte buffer), lists say `deque` (a ring buffer) and
//! hashes, sets, sorted sets and streams say `btree` (ordered B-trees, so replies and
//! snapshots are identical on every replica).

use std::mem::size_of;

use bytes::Bytes;

use super::args::{int, is, parse_i64};
use super::{respond, ReadCtx};
use crate::keyspace::{Entry, Value};
use crate::reply::Reply;

/// Redis's reply to a subcommand it does not know.
fn unknown_subcommand(command: &str, argv: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(&argv[1])
    ))
}

/// Redis's `addReplyHelp`: a header, the lines, and the HELP footer.
fn help(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::status(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|line| Reply::status(*line)));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Print this help."));
    Reply::Array(out)
}

/// The OBJECT ENCODING name of a value.
pub fn encoding(value: &Value) -> &'static str {
    match value {
        Value::Str(data) if parse_i64(data).is_some() => "int",
        Value::Str(_) => "raw",
        Value::List(_) => "deque",
        Value::Hash(_) | Value::Set(_) | Value::ZSet(_) | Value::Stream(_) | Value::Leases(_) => {
            "btree"
        }
        Value::Limiter(_) => "struct",
    }
}

/// An estimate of the bytes `key` costs: its name, its value's heap, the
/// keyspace slot, and the expiry index entry if it has a TTL.
pub fn memory_usage(key: &[u8], entry: &Entry) -> usize {
    let slot = size_of::<(Bytes, Entry)>() * 2; // hash table slot at load factor ≤ ½
    let expiry = entry
        .expire_at_ms
        .map_or(0, |_| size_of::<(u64, Bytes)>() * 3 / 2 + key.len());
    key.len() + slot + entry.value.heap_size() + expiry
}

pub fn object(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let sub = &argv[1];
        let arity = |name: &str, n: usize| {
            if argv.len() == n {
                Ok(())
            } else {
                Err(Reply::wrong_arity(&format!("object|{name}")))
            }
        };
        if is(sub, "HELP") {
            arity("help", 2)?;
            return Ok(help(
                "OBJECT",
                &[
                    "ENCODING <key>",
                    "    Return the kind of internal representation used in order to store the value",
                    "    associated with a <key>.",
                    "FREQ <key>",
                    "    Not tracked: raftlimit has no LFU maxmemory policy.",
                    "IDLETIME <key>",
                    "    Not tracked: reads are not replicated, so no access time is kept.",
                    "REFCOUNT <key>",
                    "    Return the number of references of the value associated with the specified",
                    "    <key>.",
                ],
            ));
        }
        let name = if is(sub, "ENCODING") {
            "encoding"
        } else if is(sub, "REFCOUNT") {
            "refcount"
        } else if is(sub, "FREQ") {
            "freq"
        } else if is(sub, "IDLETIME") {
            "idletime"
        } else {
            return Err(unknown_subcommand("OBJECT", argv));
        };
        arity(name, 3)?;
        let Some(entry) = ctx.data.keyspace.get(&argv[2], ctx.now_ms) else {
            return Ok(Reply::Nil);
        };
        Ok(match name {
            "encoding" => Reply::bulk(encoding(&entry.value)),
            // Values are never shared between keys.
            "refcount" => Reply::Int(1),
            "freq" => Reply::error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            _ => Reply::error(
                "ERR Idle time is not tracked: reads are not replicated, so raftlimit keeps no access time.",
            ),
        })
    })
}

pub fn memory(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let sub = &argv[1];
        if is(sub, "HELP") {
            if argv.len() != 2 {
                return Err(Reply::wrong_arity("memory|help"));
            }
            return Ok(help(
                "MEMORY",
                &[
                    "USAGE <key> [SAMPLES <count>]",
                    "    Return memory in bytes used by <key> and its value (an estimate; SAMPLES",
                    "    is accepted and ignored, every element is counted).",
                ],
            ));
        }
        if !is(sub, "USAGE") {
            return Err(unknown_subcommand("MEMORY", argv));
        }
        if argv.len() < 3 {
            return Err(Reply::wrong_arity("memory|usage"));
        }
        let mut j = 3;
        while j < argv.len() {
            if is(&argv[j], "SAMPLES") && j + 1 < argv.len() {
                if int(&argv[j + 1])? < 0 {
                    return Err(Reply::syntax_error());
                }
                j += 2;
            } else {
                return Err(Reply::syntax_error());
            }
        }
        Ok(ctx
            .data
            .keyspace
            .get(&argv[2], ctx.now_ms)
            .map_or(Reply::Nil, |entry| {
                Reply::Int(memory_usage(&argv[2], entry) as i64)
            }))
    })
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testing::{bulk, Harness};

    #[test]
    fn encodings() {
        let mut h = Harness::new();
        h.run("SET n 12345");
        h.run("SET s hello");
        h.run("SET z 007");
        h.run("RPUSH l a");
        h.run("HSET h f v");
        h.run("SADD set m");
        h.run("ZADD zs 1 m");
        for (key, name) in [
            ("n", "int"),
            ("s", "raw"),
            ("z", "raw"),
            ("l", "deque"),
            ("h", "btree"),
            ("set", "btree"),
            ("zs", "btree"),
        ] {
            assert_eq!(
                h.run(&format!("OBJECT ENCODING {key}")),
                bulk(name),
                "{key}"
            );
        }
        assert_eq!(h.run("OBJECT ENCODING nope"), Reply::Nil);
        assert_eq!(h.run("object encoding n"), bulk("int"));
        assert_eq!(h.run("OBJECT REFCOUNT l"), Reply::Int(1));
    }

    #[test]
    fn object_errors_and_help() {
        let mut h = Harness::new();
        h.run("SET k v");
        assert_eq!(h.run("OBJECT"), Reply::wrong_arity("object"));
        assert_eq!(
            h.run("OBJECT ENCODING"),
            Reply::error("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(
            h.run("OBJECT ENCODING a b"),
            Reply::error("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(
            h.run("OBJECT foo k"),
            Reply::error("ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        );
        assert!(h.run("OBJECT FREQ k").is_error());
        assert_eq!(h.run("OBJECT FREQ nope"), Reply::Nil);
        assert!(h.run("OBJECT IDLETIME k").is_error());
        let Reply::Array(lines) = h.run("OBJECT HELP") else {
            panic!("help")
        };
        assert_eq!(
            lines[0],
            Reply::status("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(lines.last(), Some(&Reply::status("    Print this help.")));
        assert_eq!(
            h.run("OBJECT HELP x"),
            Reply::error("ERR wrong number of arguments for 'object|help' command")
        );
    }

    #[test]
    fn memory_usage_grows_with_the_value() {
        let mut h = Harness::new();
        h.run("SET s v");
        h.run("RPUSH small a");
        h.run("RPUSH big a b c d e f g h i j k l m n o p");
        let usage = |h: &mut Harness, key: &str| match h.run(&format!("MEMORY USAGE {key}")) {
            Reply::Int(n) => n,
            other => panic!("{other:?}"),
        };
        assert!(usage(&mut h, "s") > 0);
        assert!(usage(&mut h, "big") > usage(&mut h, "small"));
        h.run("ZADD z 1 a 2 b");
        h.run("HSET hh f v");
        h.run("SADD ss m");
        for key in ["z", "hh", "ss"] {
            assert!(usage(&mut h, key) > 0, "{key}");
        }
        assert_eq!(h.run("MEMORY USAGE nope"), Reply::Nil);
        assert!(matches!(h.run("MEMORY USAGE s SAMPLES 0"), Reply::Int(_)));
        assert_eq!(h.run("MEMORY USAGE s SAMPLES -1"), Reply::syntax_error());
        assert_eq!(h.run("MEMORY USAGE s SAMPLES x"), Reply::not_integer());
        assert_eq!(h.run("MEMORY USAGE s FOO"), Reply::syntax_error());
        assert_eq!(
            h.run("MEMORY USAGE"),
            Reply::error("ERR wrong number of arguments for 'memory|usage' command")
        );
        assert_eq!(
            h.run("MEMORY DOCTOR"),
            Reply::error("ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.")
        );
        assert!(matches!(h.run("MEMORY HELP"), Reply::Array(_)));
    }
}

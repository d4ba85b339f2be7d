//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP,
//! SSCAN.
//!
//! Members are kept in byte order. SPOP cannot be random inside a replicated
//! state machine, so it picks members with a pseudo-random function of the
//! log entry's index, the key and the set's size: every replica pops the same
//! members, and the choice still varies from one write to the next.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::args::positive;
use super::cursor::scan_elements;
use super::{read_as, respond, write_as, ReadCtx, WriteCtx};
use crate::keyspace::Set;
use crate::reply::Reply;

fn read<'a>(ctx: &'a ReadCtx<'_>, key: &[u8]) -> Result<Option<&'a Set>, Reply> {
    read_as::<Set>(&ctx.data.keyspace, key, ctx.now_ms)
}

pub fn sadd(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let added =
            write_as::<Set, _>(&mut ctx.data.keyspace, &argv[1], ctx.now_ms, true, |set| {
                argv[2..]
                    .iter()
                    .filter(|member| set.insert((*member).clone()))
                    .count()
            })?;
        Ok(Reply::Int(added.unwrap_or(0) as i64))
    })
}

pub fn srem(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let removed =
            write_as::<Set, _>(&mut ctx.data.keyspace, &argv[1], ctx.now_ms, false, |set| {
                argv[2..]
                    .iter()
                    .filter(|member| set.remove(*member))
                    .count()
            })?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

pub fn smembers(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let set = read(ctx, &argv[1])?;
        Ok(Reply::Set(
            set.into_iter()
                .flatten()
                .cloned()
                .map(Reply::Bulk)
                .collect(),
        ))
    })
}

pub fn sismember(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let set = read(ctx, &argv[1])?;
        Ok(Reply::Int(i64::from(
            set.is_some_and(|s| s.contains(&argv[2])),
        )))
    })
}

pub fn smismember(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let set = read(ctx, &argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| Reply::Int(i64::from(set.is_some_and(|s| s.contains(m)))))
                .collect(),
        ))
    })
}

pub fn scard(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let set = read(ctx, &argv[1])?;
        Ok(Reply::Int(set.map_or(0, |s| s.len() as i64)))
    })
}

/// SplitMix64: a small, well-mixed, fully specified PRNG step.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The deterministic seed of one SPOP: the log index, the key and the size.
fn seed(log_index: u64, key: &[u8], len: usize) -> u64 {
    let mut state = log_index ^ (len as u64).rotate_left(32);
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        state ^= u64::from_le_bytes(word);
        splitmix(&mut state);
    }
    state
}

/// `count` distinct positions below `len` (Floyd's algorithm), ascending.
fn pick_positions(state: &mut u64, len: usize, count: usize) -> BTreeSet<usize> {
    let mut picked = BTreeSet::new();
    for j in len - count..len {
        let t = (splitmix(state) % (j as u64 + 1)) as usize;
        if !picked.insert(t) {
            picked.insert(j);
        }
    }
    picked
}

pub fn spop(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        if argv.len() > 3 {
            return Err(Reply::syntax_error());
        }
        let count = argv.get(2).map(|arg| positive(arg)).transpose()?;
        let log_index = ctx.log_index;
        let key = &argv[1];
        let popped = write_as::<Set, _>(&mut ctx.data.keyspace, key, ctx.now_ms, false, |set| {
            let len = set.len();
            // Never more than the set holds, whatever the count claims.
            let want = count.unwrap_or(1).min(len as u64) as usize;
            if want == 0 {
                return Vec::new();
            }
            if want == len {
                return std::mem::take(set).into_iter().collect::<Vec<_>>();
            }
            let mut state = seed(log_index, key, len);
            let positions = pick_positions(&mut state, len, want);
            let chosen: Vec<Bytes> = set
                .iter()
                .enumerate()
                .filter(|(i, _)| positions.contains(i))
                .map(|(_, m)| m.clone())
                .collect();
            for member in &chosen {
                set.remove(member);
            }
            chosen
        })?;
        Ok(match (popped, count) {
            (None, None) => Reply::Nil,
            (None, Some(_)) => Reply::Set(Vec::new()),
            (Some(mut one), None) => Reply::bulk_or_nil(one.pop()),
            (Some(many), Some(_)) => Reply::Set(many.into_iter().map(Reply::Bulk).collect()),
        })
    })
}

pub fn sscan(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let items = read(ctx, &argv[1]).map(|set| set.map(|s| s.iter().map(|m| (m, ()))));
    scan_elements(argv, items, |member, (), out| {
        out.push(Reply::Bulk(member.clone()))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::Bytes;

    use crate::reply::Reply;
    use crate::testing::{bulk, Harness};

    fn set_of(items: &[&str]) -> Reply {
        Reply::Set(items.iter().map(|s| bulk(s)).collect())
    }

    fn members(reply: Reply) -> BTreeSet<Bytes> {
        match reply {
            Reply::Set(items) | Reply::Array(items) => items
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Bulk(b) => Some(b),
                    _ => None,
                })
                .collect(),
            Reply::Bulk(b) => [b].into_iter().collect(),
            _ => BTreeSet::new(),
        }
    }

    #[test]
    fn add_remove_and_query() {
        let mut h = Harness::new();
        assert_eq!(h.run("SADD s b a c a"), Reply::Int(3));
        assert_eq!(h.run("SADD s a d"), Reply::Int(1));
        assert_eq!(h.run("SMEMBERS s"), set_of(&["a", "b", "c", "d"]));
        assert_eq!(h.run("SMEMBERS nope"), set_of(&[]));
        assert_eq!(h.run("SISMEMBER s a"), Reply::Int(1));
        assert_eq!(h.run("SISMEMBER s z"), Reply::Int(0));
        assert_eq!(h.run("SISMEMBER nope z"), Reply::Int(0));
        assert_eq!(
            h.run("SMISMEMBER s a z d"),
            Reply::Array(vec![Reply::Int(1), Reply::Int(0), Reply::Int(1)])
        );
        assert_eq!(
            h.run("SMISMEMBER nope a"),
            Reply::Array(vec![Reply::Int(0)])
        );
        assert_eq!(h.run("SMISMEMBER s"), Reply::wrong_arity("smismember"));
        assert_eq!(h.run("SCARD s"), Reply::Int(4));
        assert_eq!(h.run("SCARD nope"), Reply::Int(0));
        assert_eq!(h.run("SREM s a z"), Reply::Int(1));
        assert_eq!(h.run("SREM nope a"), Reply::Int(0));
        assert_eq!(h.run("SREM s b c d"), Reply::Int(3));
        assert_eq!(
            h.run("EXISTS s"),
            Reply::Int(0),
            "an emptied set is deleted"
        );
        assert_eq!(h.run("TYPE s"), Reply::status("none"));
        h.run("SADD t x");
        assert_eq!(h.run("TYPE t"), Reply::status("set"));
    }

    #[test]
    fn spop_is_deterministic_and_removes() {
        let mut a = Harness::new();
        let mut b = Harness::new();
        for h in [&mut a, &mut b] {
            h.run("SADD s m0 m1 m2 m3 m4 m5 m6 m7 m8 m9");
        }
        let one = a.run("SPOP s");
        assert_eq!(b.run("SPOP s"), one, "same log index, same pick");
        let three = a.run("SPOP s 3");
        assert_eq!(b.run("SPOP s 3"), three);
        let popped = members(one)
            .union(&members(three.clone()))
            .cloned()
            .collect::<BTreeSet<_>>();
        assert_eq!(popped.len(), 4, "distinct members");
        assert_eq!(a.run("SCARD s"), Reply::Int(6));
        for m in &popped {
            let cmd = format!("SISMEMBER s {}", String::from_utf8_lossy(m));
            assert_eq!(a.run(&cmd), Reply::Int(0));
        }
        assert_eq!(a.data.keyspace.get(b"s", 0), b.data.keyspace.get(b"s", 0));
        let rest = a.run("SPOP s 100");
        assert_eq!(members(rest).len(), 6);
        assert_eq!(a.run("EXISTS s"), Reply::Int(0));
        assert_eq!(a.run("SPOP s"), Reply::Nil);
        assert_eq!(a.run("SPOP s 2"), set_of(&[]));
    }

    #[test]
    fn spop_picks_vary() {
        let mut seen = BTreeSet::new();
        for i in 0..20 {
            let mut h = Harness::new();
            h.run("SADD s a b c d e f g h");
            h.index += i * 7;
            seen.extend(members(h.run("SPOP s")));
        }
        assert!(
            seen.len() > 2,
            "different entries pick different members: {seen:?}"
        );
    }

    #[test]
    fn spop_arguments() {
        let mut h = Harness::new();
        h.run("SET str v");
        assert_eq!(
            h.run("SPOP str 0"),
            Reply::wrong_type(),
            "the type is checked first"
        );
        assert_eq!(h.run("SPOP str"), Reply::wrong_type());
        assert_eq!(h.run("SPOP nope 0"), set_of(&[]));
        assert_eq!(h.run("SPOP str 1"), Reply::wrong_type());
        assert_eq!(
            h.run("SPOP s -1"),
            Reply::error("ERR value is out of range, must be positive")
        );
        assert_eq!(h.run("SPOP s x"), Reply::not_integer());
        assert_eq!(h.run("SPOP s 1 2"), Reply::syntax_error());
        h.run("SADD s a");
        assert_eq!(h.run("SPOP s 0"), set_of(&[]));
        assert_eq!(h.run("SCARD s"), Reply::Int(1));
        assert_eq!(h.run("SPOP s 9223372036854775807"), set_of(&["a"]));
    }

    #[test]
    fn wrong_types() {
        let mut h = Harness::new();
        h.run("LPUSH l a");
        for cmd in [
            "SADD l a",
            "SREM l a",
            "SMEMBERS l",
            "SISMEMBER l a",
            "SMISMEMBER l a",
            "SCARD l",
            "SPOP l",
            "SSCAN l 0",
        ] {
            assert_eq!(h.run(cmd), Reply::wrong_type(), "{cmd}");
        }
    }

    #[test]
    fn sscan_visits_every_member() {
        let mut h = Harness::new();
        for i in 0..40 {
            h.run(&format!("SADD s m{i}"));
        }
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let Reply::Array(parts) = h.run(&format!("SSCAN s {cursor} COUNT 5")) else {
                panic!("sscan reply")
            };
            let Reply::Bulk(next) = &parts[0] else {
                panic!("cursor")
            };
            seen.extend(members(parts[1].clone()));
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 40);
    }
}

//! Redis's conversions between Lua values and command replies, both ways.
//!
//! Reply → Lua is what `redis.call` returns to a script; Lua → Reply is what
//! a script's return value becomes for the client. The rules are Redis 7's
//! (see "Data type conversion" in Redis's scripting documentation): numbers
//! are truncated to integers, `false` is nil, `true` is 1, a table is an
//! array that stops at its first nil, and `{ok=…}` / `{err=…}` are status
//! and error replies.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::reply::{format_double, Reply};

/// How many levels of nested tables a reply may have; deeper ones become
/// an error, as Redis refuses to recurse forever on self-referencing tables.
const MAX_DEPTH: usize = 64;

/// What `redis.call` gives a script for a command's reply. `resp3` follows
/// `redis.setresp(3)`.
pub fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Ok => status_table(lua, "OK")?,
        Reply::Status(text) => status_table(lua, text)?,
        Reply::Error(text) => error_table(lua, text)?,
        Reply::Int(n) => Value::Integer(*n),
        Reply::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) => sequence(lua, items.iter(), resp3)?,
        Reply::Set(items) if !resp3 => sequence(lua, items.iter(), resp3)?,
        Reply::Set(items) => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            wrapped(lua, "set", Value::Table(set))?
        }
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (key, value) in pairs {
                map.raw_set(
                    reply_to_lua(lua, key, resp3)?,
                    reply_to_lua(lua, value, resp3)?,
                )?;
            }
            wrapped(lua, "map", Value::Table(map))?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) if !resp3 => {
            sequence(lua, pairs.iter().flat_map(|(k, v)| [k, v]), resp3)?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            let outer = lua.create_table()?;
            for (i, (key, value)) in pairs.iter().enumerate() {
                let pair = sequence(lua, [key, value].into_iter(), resp3)?;
                outer.raw_set(i + 1, pair)?;
            }
            Value::Table(outer)
        }
        Reply::Double(value) if resp3 => wrapped(lua, "double", Value::Number(*value))?,
        Reply::Double(value) => Value::String(lua.create_string(format_double(*value))?),
        Reply::Bool(value) if resp3 => Value::Boolean(*value),
        Reply::Bool(value) => Value::Integer(*value as i64),
        Reply::ByProtocol { .. } | Reply::Decision(_) => {
            reply_to_lua(lua, &reply.for_protocol(resp3), resp3)?
        }
    })
}

fn sequence<'a>(
    lua: &Lua,
    items: impl Iterator<Item = &'a Reply>,
    resp3: bool,
) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    for (i, item) in items.enumerate() {
        table.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(table))
}

fn wrapped(lua: &Lua, field: &str, inner: Value) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set(field, inner)?;
    Ok(Value::Table(table))
}

/// `{ok = text}`, as `redis.status_reply` builds it.
pub fn status_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    wrapped(lua, "ok", Value::String(lua.create_string(text)?))
}

/// `{err = text}`, as `redis.error_reply` builds it.
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    wrapped(lua, "err", Value::String(lua.create_string(text)?))
}

/// What a script's return value becomes for the client.
pub fn lua_to_reply(value: &Value) -> Reply {
    to_reply(value, 0)
}

fn to_reply(value: &Value, depth: usize) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(n) => Reply::Int(*n),
        // Redis truncates towards zero; `as` saturates out-of-range values.
        Value::Number(n) => Reply::Int(n.trunc() as i64),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(_) if depth >= MAX_DEPTH => Reply::error("ERR reached lua stack limit"),
        Value::Table(table) => table_to_reply(table, depth),
        _ => Reply::Nil,
    }
}

fn table_to_reply(table: &Table, depth: usize) -> Reply {
    if let Ok(Value::String(err)) = table.raw_get::<Value>("err") {
        return Reply::Error(error_text(&err.to_string_lossy()));
    }
    if let Ok(Value::String(ok)) = table.raw_get::<Value>("ok") {
        let text = ok.to_string_lossy();
        return if text == "OK" {
            Reply::Ok
        } else {
            Reply::Status(text)
        };
    }
    if let Ok(Value::Number(n)) = table.raw_get::<Value>("double") {
        return Reply::Double(n);
    }
    if let Ok(Value::Integer(n)) = table.raw_get::<Value>("double") {
        return Reply::Double(n as f64);
    }
    if let Ok(Value::Table(map)) = table.raw_get::<Value>("map") {
        let mut pairs = Vec::new();
        for (key, value) in map.pairs::<Value, Value>().flatten() {
            pairs.push((to_reply(&key, depth + 1), to_reply(&value, depth + 1)));
        }
        return Reply::Map(pairs);
    }
    if let Ok(Value::Table(set)) = table.raw_get::<Value>("set") {
        let members = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(member, _)| to_reply(&member, depth + 1))
            .collect();
        return Reply::Set(members);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match table.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(to_reply(&item, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// An error reply's text as Redis sends it: an error without a code gets
/// none added, but a leading `-` is dropped (Redis 7 strips it).
fn error_text(text: &str) -> String {
    text.strip_prefix('-').unwrap_or(text).to_owned()
}

/// A command argument from a script: strings as they are, numbers as Lua
/// prints them (`%.14g`); anything else is refused, as Redis does.
pub fn lua_to_arg(value: &Value) -> Option<Bytes> {
    match value {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(Bytes::from(n.to_string())),
        Value::Number(n) => Some(Bytes::from(format_lua_number(*n))),
        _ => None,
    }
}

/// Lua 5.1's `%.14g` for a number.
pub fn format_lua_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    // %.14g: 14 significant digits, scientific outside [1e-4, 1e14).
    let exponent = n.abs().log10().floor() as i32;
    if !(-4..14).contains(&exponent) {
        let text = format!("{:.13e}", n);
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = trim_zeros(mantissa);
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = (13 - exponent).max(0) as usize;
    trim_zeros(&format!("{n:.decimals$}")).to_owned()
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_lua_does() {
        assert_eq!(format_lua_number(3.0), "3");
        assert_eq!(format_lua_number(-42.0), "-42");
        assert_eq!(format_lua_number(0.5), "0.5");
        assert_eq!(format_lua_number(1.0 / 3.0), "0.33333333333333");
        assert_eq!(format_lua_number(1e20), "1e+20");
        assert_eq!(format_lua_number(1.5e-7), "1.5e-07");
        assert_eq!(format_lua_number(123456.789), "123456.789");
    }

    #[test]
    fn replies_and_lua_values_convert_as_redis_does() {
        let lua = Lua::new();
        let value = reply_to_lua(
            &lua,
            &Reply::Array(vec![Reply::Int(1), Reply::Nil, Reply::bulk("x")]),
            false,
        )
        .unwrap_or(Value::Nil);
        // RESP2 nil becomes false inside the array, and false comes back as nil.
        assert_eq!(
            lua_to_reply(&value),
            Reply::Array(vec![Reply::Int(1), Reply::Nil, Reply::bulk("x")])
        );
        assert_eq!(lua_to_reply(&Value::Number(3.99)), Reply::Int(3));
        assert_eq!(lua_to_reply(&Value::Number(-3.99)), Reply::Int(-3));
        assert_eq!(lua_to_reply(&Value::Boolean(true)), Reply::Int(1));
        let err = error_table(&lua, "-MYERR bad").unwrap_or(Value::Nil);
        assert_eq!(lua_to_reply(&err), Reply::error("MYERR bad"));
        let ok = status_table(&lua, "FINE").unwrap_or(Value::Nil);
        assert_eq!(lua_to_reply(&ok), Reply::status("FINE"));
    }
}

//! The libraries Redis preloads for scripts beyond Lua's own: `cjson` and
//! `bit` (LuaBitOp), implemented in Rust with the same names and results.

use mlua::{LightUserData, Lua, Table, Value, Variadic};

/// How deep `cjson.encode` follows nested tables (cjson's default limit).
const MAX_JSON_DEPTH: usize = 1000;

/// Installs `cjson` and `bit` as globals of `lua`.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("cjson", cjson(lua)?)?;
    globals.set("bit", bit(lua)?)?;
    Ok(())
}

/// `cjson.null`: a light userdata, as in lua-cjson.
fn json_null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "encode",
        lua.create_function(|_, value: Value| {
            let json = to_json(&value, 0).map_err(mlua::Error::RuntimeError)?;
            serde_json::to_string(&json).map_err(|e| mlua::Error::RuntimeError(e.to_string()))
        })?,
    )?;
    table.set(
        "decode",
        lua.create_function(|lua, text: mlua::String| {
            let json: serde_json::Value =
                serde_json::from_slice(&text.as_bytes()).map_err(|e| {
                    mlua::Error::RuntimeError(format!(
                        "Expected value but found invalid token: {e}"
                    ))
                })?;
            from_json(lua, &json)
        })?,
    )?;
    table.set("null", json_null())?;
    Ok(table)
}

fn to_json(value: &Value, depth: usize) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    if depth > MAX_JSON_DEPTH {
        return Err("Cannot serialise, excessive nesting (1001)".into());
    }
    Ok(match value {
        Value::Nil => J::Null,
        Value::LightUserData(ud) if ud.0.is_null() => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(n) => J::from(*n),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(J::Number)
            .ok_or("Cannot serialise number: must not be NaN or Inf")?,
        Value::String(s) => J::String(s.to_string_lossy()),
        Value::Table(table) => {
            let pairs: Vec<(Value, Value)> = table.pairs::<Value, Value>().flatten().collect();
            let len = table.raw_len();
            let is_array = !pairs.is_empty()
                && pairs.len() == len
                && pairs
                    .iter()
                    .all(|(k, _)| matches!(k, Value::Integer(i) if *i >= 1 && *i as usize <= len));
            if is_array {
                let mut items = Vec::with_capacity(len);
                for i in 1..=len {
                    items.push(to_json(
                        &table.raw_get::<Value>(i).unwrap_or(Value::Nil),
                        depth + 1,
                    )?);
                }
                J::Array(items)
            } else {
                let mut object = serde_json::Map::new();
                for (key, item) in pairs {
                    let key = match &key {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(n) => n.to_string(),
                        Value::Number(n) => super::convert::format_lua_number(*n),
                        _ => {
                            return Err(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            )
                        }
                    };
                    object.insert(key, to_json(&item, depth + 1)?);
                }
                J::Object(object)
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    })
}

fn from_json(lua: &Lua, json: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match json {
        J::Null => json_null(),
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let table = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, from_json(lua, item)?)?;
            }
            Value::Table(table)
        }
        J::Object(object) => {
            let table = lua.create_table()?;
            for (key, item) in object {
                table.raw_set(key.as_str(), from_json(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

/// A number as LuaBitOp sees it: reduced modulo 2^32 to a signed 32-bit value.
fn to_bit(value: &Value) -> mlua::Result<i32> {
    match value {
        Value::Integer(n) => Ok(*n as i32),
        Value::Number(n) => Ok((*n as i64) as i32),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(|n| (n as i64) as i32)
            .ok_or_else(|| mlua::Error::RuntimeError("bad argument (number expected)".into())),
        _ => Err(mlua::Error::RuntimeError(
            "bad argument (number expected)".into(),
        )),
    }
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let unary =
        |f: fn(i32) -> i32| lua.create_function(move |_, x: Value| Ok(i64::from(f(to_bit(&x)?))));
    table.set("tobit", unary(|x| x)?)?;
    table.set("bnot", unary(|x| !x)?)?;
    table.set("bswap", unary(i32::swap_bytes)?)?;
    let fold = |init: i32, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut acc = init;
            for arg in args.iter() {
                acc = f(acc, to_bit(arg)?);
            }
            Ok(i64::from(acc))
        })
    };
    table.set("band", fold(-1, |a, b| a & b)?)?;
    table.set("bor", fold(0, |a, b| a | b)?)?;
    table.set("bxor", fold(0, |a, b| a ^ b)?)?;
    let shift = |f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (x, n): (Value, Value)| {
            Ok(i64::from(f(to_bit(&x)?, (to_bit(&n)? & 31) as u32)))
        })
    };
    table.set("lshift", shift(|x, n| ((x as u32) << n) as i32)?)?;
    table.set("rshift", shift(|x, n| ((x as u32) >> n) as i32)?)?;
    table.set("arshift", shift(|x, n| x >> n)?)?;
    table.set("rol", shift(|x, n| (x as u32).rotate_left(n) as i32)?)?;
    table.set("ror", shift(|x, n| (x as u32).rotate_right(n) as i32)?)?;
    table.set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let x = to_bit(&x)? as u32;
            let n = match &n {
                Some(n) => to_bit(n)?,
                None => 8,
            };
            let digits = n.unsigned_abs().min(8) as usize;
            let text = if n < 0 {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(text[8 - digits..].to_owned())
        })?,
    )?;
    Ok(table)
}

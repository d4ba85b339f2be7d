//! The libraries Redis preloads for scripts beyond Lua's own: `cjson`,
//! `bit` (LuaBitOp) and `struct` (lua-struct), implemented in Rust with the
//! same names and results.

use mlua::{LightUserData, Lua, Table, Value, Variadic};

/// How deep `cjson.encode` follows nested tables (cjson's default limit).
const MAX_JSON_DEPTH: usize = 1000;

/// Installs `cjson` and `bit` as globals of `lua`.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("cjson", cjson(lua)?)?;
    globals.set("bit", bit(lua)?)?;
    globals.set("struct", structlib(lua)?)?;
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

/// One item of a lua-struct format string.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Int {
        size: usize,
        signed: bool,
    },
    Float,
    Double,
    /// `c[n]`: a fixed-size string; `c0` takes its length from the
    /// previous integer (in unpack) or from the string (in pack).
    Chars(usize),
    /// `s`: a zero-terminated string.
    ZeroTerminated,
    Padding,
}

/// A parsed format: byte order plus items with their alignment.
struct Format {
    items: Vec<(Item, usize)>,
    little: bool,
}

fn struct_error(message: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(message.into())
}

/// Parses a format string. Alignment (`!n`) applies to the items after it.
fn parse_format(format: &[u8]) -> mlua::Result<Format> {
    let mut items = Vec::new();
    let mut little = cfg!(target_endian = "little");
    let mut max_align = 1usize;
    let mut i = 0;
    let number = |i: &mut usize| -> Option<usize> {
        let start = *i;
        while *i < format.len() && format[*i].is_ascii_digit() {
            *i += 1;
        }
        std::str::from_utf8(&format[start..*i]).ok()?.parse().ok()
    };
    while i < format.len() {
        let op = format[i];
        i += 1;
        let item = match op {
            b' ' => continue,
            b'>' => {
                little = false;
                continue;
            }
            b'<' => {
                little = true;
                continue;
            }
            b'=' => {
                little = cfg!(target_endian = "little");
                continue;
            }
            b'!' => {
                max_align = number(&mut i).unwrap_or(8);
                if !max_align.is_power_of_two() {
                    return Err(struct_error("alignment must be power of 2"));
                }
                continue;
            }
            b'b' | b'B' => Item::Int {
                size: 1,
                signed: op == b'b',
            },
            b'h' | b'H' => Item::Int {
                size: 2,
                signed: op == b'h',
            },
            b'l' | b'L' | b'T' | b'j' | b'J' => Item::Int {
                size: 8,
                signed: op == b'l' || op == b'j',
            },
            b'i' | b'I' => {
                let size = number(&mut i).unwrap_or(4);
                if !(1..=8).contains(&size) {
                    return Err(struct_error(format!(
                        "integral size {size} is larger than limit of 8"
                    )));
                }
                Item::Int {
                    size,
                    signed: op == b'i',
                }
            }
            b'f' => Item::Float,
            b'd' => Item::Double,
            b'c' => Item::Chars(number(&mut i).unwrap_or(1)),
            b's' => Item::ZeroTerminated,
            b'x' => Item::Padding,
            other => {
                return Err(struct_error(format!(
                    "invalid format option '{}'",
                    other as char
                )))
            }
        };
        let natural = match item {
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            _ => 1,
        };
        items.push((item, natural.min(max_align)));
    }
    Ok(Format { items, little })
}

fn pad_to(len: usize, align: usize) -> usize {
    if align <= 1 {
        0
    } else {
        (align - len % align) % align
    }
}

fn number_of(value: &Value) -> mlua::Result<f64> {
    match value {
        Value::Integer(n) => Ok(*n as f64),
        Value::Number(n) => Ok(*n),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| struct_error("bad argument to 'pack' (number expected)")),
        _ => Err(struct_error("bad argument to 'pack' (number expected)")),
    }
}

fn structlib(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "pack",
        lua.create_function(|lua, (format, values): (mlua::String, Variadic<Value>)| {
            let format = parse_format(&format.as_bytes())?;
            let mut out: Vec<u8> = Vec::new();
            let mut values = values.iter();
            let mut next = || values.next().cloned().unwrap_or(Value::Nil);
            for (item, align) in &format.items {
                out.extend(std::iter::repeat_n(0, pad_to(out.len(), *align)));
                match *item {
                    Item::Int { size, .. } => {
                        let n = number_of(&next())? as i64 as u64;
                        let bytes = if format.little {
                            n.to_le_bytes()
                        } else {
                            n.to_be_bytes()
                        };
                        if format.little {
                            out.extend_from_slice(&bytes[..size]);
                        } else {
                            out.extend_from_slice(&bytes[8 - size..]);
                        }
                    }
                    Item::Float => {
                        let n = number_of(&next())? as f32;
                        out.extend_from_slice(&if format.little {
                            n.to_le_bytes()
                        } else {
                            n.to_be_bytes()
                        });
                    }
                    Item::Double => {
                        let n = number_of(&next())?;
                        out.extend_from_slice(&if format.little {
                            n.to_le_bytes()
                        } else {
                            n.to_be_bytes()
                        });
                    }
                    Item::Chars(_) | Item::ZeroTerminated => {
                        let value = next();
                        let Value::String(text) = &value else {
                            return Err(struct_error("bad argument to 'pack' (string expected)"));
                        };
                        let bytes = text.as_bytes();
                        match *item {
                            Item::Chars(0) => out.extend_from_slice(&bytes),
                            Item::Chars(size) => {
                                if bytes.len() < size {
                                    return Err(struct_error("string too short"));
                                }
                                out.extend_from_slice(&bytes[..size]);
                            }
                            _ => {
                                if bytes.contains(&0) {
                                    return Err(struct_error("string contains zeros"));
                                }
                                out.extend_from_slice(&bytes);
                                out.push(0);
                            }
                        }
                    }
                    Item::Padding => out.push(0),
                }
            }
            lua.create_string(&out)
        })?,
    )?;
    table.set(
        "unpack",
        lua.create_function(
            |lua, (format, data, start): (mlua::String, mlua::String, Option<i64>)| {
                let format = parse_format(&format.as_bytes())?;
                let data = data.as_bytes();
                let mut pos = start.unwrap_or(1).max(1) as usize - 1;
                let mut results: Vec<Value> = Vec::new();
                let mut last_int: Option<i64> = None;
                let take = |pos: &mut usize, n: usize| -> mlua::Result<&[u8]> {
                    let end = pos
                        .checked_add(n)
                        .filter(|&e| e <= data.len())
                        .ok_or_else(|| struct_error("data string too short"))?;
                    let slice = &data[*pos..end];
                    *pos = end;
                    Ok(slice)
                };
                for (item, align) in &format.items {
                    pos += pad_to(pos, *align);
                    match *item {
                        Item::Int { size, signed } => {
                            let bytes = take(&mut pos, size)?;
                            let mut buf = [0u8; 8];
                            if format.little {
                                buf[..size].copy_from_slice(bytes);
                            } else {
                                buf[8 - size..].copy_from_slice(bytes);
                            }
                            let raw = if format.little {
                                u64::from_le_bytes(buf)
                            } else {
                                u64::from_be_bytes(buf)
                            };
                            let value = if signed && size < 8 {
                                let shift = 64 - 8 * size as u32;
                                ((raw << shift) as i64) >> shift
                            } else {
                                raw as i64
                            };
                            last_int = Some(value);
                            results.push(Value::Integer(value));
                        }
                        Item::Float => {
                            let bytes = take(&mut pos, 4)?;
                            let mut buf = [0u8; 4];
                            buf.copy_from_slice(bytes);
                            let n = if format.little {
                                f32::from_le_bytes(buf)
                            } else {
                                f32::from_be_bytes(buf)
                            };
                            results.push(Value::Number(f64::from(n)));
                        }
                        Item::Double => {
                            let bytes = take(&mut pos, 8)?;
                            let mut buf = [0u8; 8];
                            buf.copy_from_slice(bytes);
                            let n = if format.little {
                                f64::from_le_bytes(buf)
                            } else {
                                f64::from_be_bytes(buf)
                            };
                            results.push(Value::Number(n));
                        }
                        Item::Chars(size) => {
                            let size = if size == 0 {
                                let n = last_int.take().ok_or_else(|| {
                                    struct_error("format 'c0' needs a previous size")
                                })?;
                                results.pop();
                                usize::try_from(n).map_err(|_| struct_error("bad size for 'c0'"))?
                            } else {
                                size
                            };
                            let bytes = take(&mut pos, size)?;
                            results.push(Value::String(lua.create_string(bytes)?));
                        }
                        Item::ZeroTerminated => {
                            let rest = &data[pos.min(data.len())..];
                            let len = rest
                                .iter()
                                .position(|&b| b == 0)
                                .ok_or_else(|| struct_error("unfinished string in data"))?;
                            results.push(Value::String(lua.create_string(&rest[..len])?));
                            pos += len + 1;
                        }
                        Item::Padding => pos += 1,
                    }
                }
                results.push(Value::Integer(pos as i64 + 1));
                Ok(mlua::MultiValue::from_iter(results))
            },
        )?,
    )?;
    table.set(
        "size",
        lua.create_function(|_, format: mlua::String| {
            let format = parse_format(&format.as_bytes())?;
            let mut size = 0usize;
            for (item, align) in &format.items {
                size += pad_to(size, *align);
                size += match item {
                    Item::Int { size, .. } => *size,
                    Item::Float => 4,
                    Item::Double => 8,
                    Item::Chars(n) => *n,
                    Item::Padding => 1,
                    Item::ZeroTerminated => {
                        return Err(struct_error("options 's' and 'c0' have no fixed size"))
                    }
                };
            }
            Ok(size as i64)
        })?,
    )?;
    Ok(table)
}

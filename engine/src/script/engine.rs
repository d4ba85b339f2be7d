//! The Lua 5.1 interpreter that runs scripts: Redis's sandbox, the `redis`
//! API and the script cache of compiled functions.
//!
//! One interpreter serves every script on a node, as in Redis. It is
//! sandboxed the way Redis 7 sandboxes it: no `os`, `io`, `package` or
//! `debug`, no loading of files or bytecode, and no new globals. Commands a
//! script issues go to a [`Host`], so this module knows nothing about the
//! dataset or Raft.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{
    ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table,
    Value, VmState,
};

use super::convert::{error_table, lua_to_arg, lua_to_reply, reply_to_lua, status_table};
use super::{libs, sha1_hex};
use crate::error::Error;
use crate::reply::Reply;

/// How often (in VM instructions) a running script checks for SCRIPT KILL.
const KILL_CHECK_INSTRUCTIONS: u32 = 10_000;

/// Compiled scripts kept at most; past it the cache starts over (the
/// bodies stay in the replicated cache and compile again on demand).
const MAX_COMPILED: usize = 10_000;

/// The interpreter's memory ceiling: a script that builds more fails with
/// a Lua "not enough memory" error instead of taking the node down.
const MEMORY_LIMIT_BYTES: usize = 512 << 20;

/// The error a killed script answers with.
pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// Redis's version, as scripts see it in `redis.REDIS_VERSION`.
const REDIS_VERSION: &str = "7.2.0";

/// Where a script's commands go.
pub trait Host {
    /// Runs one command issued by `redis.call` / `redis.pcall`.
    fn call(&mut self, argv: Vec<Bytes>) -> Reply;
}

/// The interpreter and its compiled scripts.
pub struct Engine {
    lua: Lua,
    compiled: HashMap<String, RegistryKey>,
    kill: Arc<AtomicBool>,
    /// `redis.setresp(3)` was called in the running script.
    resp3: Rc<Cell<bool>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("compiled", &self.compiled.len())
            .finish()
    }
}

/// Lua run after the libraries load: the `redis.call`/`pcall` pair over the
/// per-run primitive, `loadstring` without bytecode, and read-only globals.
const PRELUDE: &str = r#"
local raw_set, set_meta, load_string = rawset, setmetatable, loadstring
local error_meta = { __tostring = function(reply) return reply.err end }
redis.pcall = function(...) return redis.__raw(...) end
redis.call = function(...)
  local reply = redis.__raw(...)
  if type(reply) == 'table' and reply.err ~= nil then
    error(set_meta(reply, error_meta), 0)
  end
  return reply
end
loadstring = function(chunk, name)
  if type(chunk) == 'string' and chunk:byte(1) == 27 then
    return nil, 'loading bytecode is not allowed'
  end
  return load_string(chunk, name)
end
rawset = function(t, k, v)
  if t == _G then error('Attempt to modify a readonly table', 2) end
  return raw_set(t, k, v)
end
setmetatable = function(t, meta)
  if t == _G then error('Attempt to modify a readonly table', 2) end
  return set_meta(t, meta)
end
set_meta(_G, {
  __newindex = function(_, name)
    error("Script attempted to create global variable '" .. tostring(name) .. "'", 2)
  end,
  __index = function(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
})
"#;

impl Engine {
    /// A fresh sandboxed interpreter. `kill` is SCRIPT KILL's flag: a
    /// running script stops at its next check once it is set.
    pub fn new(kill: Arc<AtomicBool>) -> Result<Self, Error> {
        let resp3 = Rc::new(Cell::new(false));
        let lua = Self::sandbox(&kill, &resp3).map_err(|e| Error::Script(e.to_string()))?;
        Ok(Engine {
            lua,
            compiled: HashMap::new(),
            kill,
            resp3,
        })
    }

    fn sandbox(kill: &Arc<AtomicBool>, resp3: &Rc<Cell<bool>>) -> mlua::Result<Lua> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        lua.set_memory_limit(MEMORY_LIMIT_BYTES)?;
        let globals = lua.globals();
        for name in [
            "dofile", "loadfile", "load", "getfenv", "setfenv", "newproxy", "module", "require",
            "gcinfo", "print",
        ] {
            globals.raw_set(name, Value::Nil)?;
        }
        libs::install(&lua)?;
        globals.raw_set("redis", redis_table(&lua, resp3.clone())?)?;
        lua.load(PRELUDE).set_name("@prelude").exec()?;
        let kill = kill.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(KILL_CHECK_INSTRUCTIONS),
            move |_, _| {
                if kill.load(Ordering::Acquire) {
                    return Err(mlua::Error::RuntimeError(KILLED.into()));
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(lua)
    }

    /// Compiles `body` into the cache unless it is there; returns its SHA-1.
    pub fn compile(&mut self, body: &[u8]) -> Result<String, Reply> {
        let sha = sha1_hex(body);
        if self.compiled.contains_key(&sha) {
            return Ok(sha);
        }
        if self.compiled.len() >= MAX_COMPILED {
            self.compiled.clear();
        }
        let function = self
            .lua
            .load(body)
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                Reply::Error(format!(
                    "ERR Error compiling script (new function): {}",
                    error_message(&e)
                ))
            })?;
        let key = self
            .lua
            .create_registry_value(function)
            .map_err(|e| Reply::Error(format!("ERR {e}")))?;
        self.compiled.insert(sha.clone(), key);
        Ok(sha)
    }

    /// Whether the script with this SHA-1 is compiled here.
    pub fn is_compiled(&self, sha: &str) -> bool {
        self.compiled.contains_key(sha)
    }

    /// Runs a compiled script with `KEYS` and `ARGV`; its commands go to `host`.
    pub fn run(&mut self, sha: &str, keys: &[Bytes], args: &[Bytes], host: &mut dyn Host) -> Reply {
        let function = match self.compiled.get(sha) {
            Some(key) => match self.lua.registry_value::<Function>(key) {
                Ok(function) => function,
                Err(e) => return Reply::Error(format!("ERR {e}")),
            },
            None => return Reply::error("NOSCRIPT No matching script. Please use EVAL."),
        };
        self.kill.store(false, Ordering::Release);
        self.resp3.set(false);
        let outcome = self.run_function(&function, keys, args, host);
        self.kill.store(false, Ordering::Release);
        // Let go of what the script built, so one large script does not
        // keep its garbage until the next collection.
        let _ = self.lua.gc_collect();
        match outcome {
            Ok(reply) => reply,
            Err((error, raised_reply)) => {
                let message = error_message(&error);
                if raised_reply.as_deref() == Some(message.as_str()) || message == KILLED {
                    // A redis.call error, or SCRIPT KILL: the text as it is.
                    Reply::Error(message)
                } else {
                    Reply::Error(format!(
                        "ERR {message} script: {sha}, on @user_script:{}.",
                        line_of(&message)
                    ))
                }
            }
        }
    }

    /// Calls the function with the per-run primitive in place. On failure,
    /// also returns the text of the last error reply a command gave, to tell
    /// a raised command error from a Lua one.
    fn run_function(
        &self,
        function: &Function,
        keys: &[Bytes],
        args: &[Bytes],
        host: &mut dyn Host,
    ) -> Result<Reply, (mlua::Error, Option<String>)> {
        let lua = &self.lua;
        let fail = |e: mlua::Error| (e, None);
        let globals = lua.globals();
        globals
            .raw_set("KEYS", strings_table(lua, keys).map_err(fail)?)
            .map_err(fail)?;
        globals
            .raw_set("ARGV", strings_table(lua, args).map_err(fail)?)
            .map_err(fail)?;
        let redis: Table = globals.raw_get("redis").map_err(fail)?;
        let host = RefCell::new(host);
        let last_error: RefCell<Option<String>> = RefCell::new(None);
        let resp3 = self.resp3.clone();
        let result = lua.scope(|scope| {
            let primitive = scope.create_function_mut(|lua, values: MultiValue| {
                let reply = match command_args(&values) {
                    Ok(argv) => host.borrow_mut().call(argv),
                    Err(reply) => reply,
                };
                if let Reply::Error(text) = &reply {
                    *last_error.borrow_mut() = Some(text.clone());
                }
                reply_to_lua(lua, &reply, resp3.get())
            })?;
            redis.raw_set("__raw", primitive)?;
            let value = function.call::<Value>(())?;
            Ok(lua_to_reply(&value))
        });
        let _ = redis.raw_set("__raw", Value::Nil);
        result.map_err(|e| (e, last_error.into_inner()))
    }
}

/// A Lua array of strings (`KEYS`, `ARGV`).
fn strings_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

/// A command's arguments from `redis.call(...)`, or the error Redis gives.
fn command_args(values: &MultiValue) -> Result<Vec<Bytes>, Reply> {
    if values.is_empty() {
        return Err(Reply::error(
            "ERR Please specify at least one argument for this redis lib call",
        ));
    }
    values
        .iter()
        .map(|value| {
            lua_to_arg(value).ok_or_else(|| {
                Reply::error("ERR Lua redis lib command arguments must be strings or integers")
            })
        })
        .collect()
}

/// The `redis` table, without `call`/`pcall` (the prelude adds them).
fn redis_table(lua: &Lua, resp3: Rc<Cell<bool>>) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, text: mlua::String| Ok(sha1_hex(&text.as_bytes())))?,
    )?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, text: mlua::String| error_table(lua, &text.to_string_lossy()))?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, text: mlua::String| status_table(lua, &text.to_string_lossy()))?,
    )?;
    redis.set(
        "log",
        lua.create_function(|_, (level, parts): (i64, mlua::Variadic<Value>)| {
            let text: Vec<String> = parts
                .iter()
                .filter_map(|v| lua_to_arg(v).map(|b| String::from_utf8_lossy(&b).into_owned()))
                .collect();
            let text = text.join(" ");
            match level {
                3 => tracing::warn!(target: "script", "{text}"),
                2 => tracing::info!(target: "script", "{text}"),
                _ => tracing::debug!(target: "script", "{text}"),
            }
            Ok(())
        })?,
    )?;
    redis.set(
        "setresp",
        lua.create_function(move |_, version: i64| match version {
            2 | 3 => {
                resp3.set(version == 3);
                Ok(())
            }
            _ => Err(mlua::Error::RuntimeError(
                "RESP version must be 2 or 3.".into(),
            )),
        })?,
    )?;
    // Effects are always what replicates here, as in Redis 7.
    redis.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.set("set_repl", lua.create_function(|_, _: Value| Ok(()))?)?;
    redis.set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (name, value) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_REPLICA", 2),
        ("REPL_SLAVE", 2),
        ("REPL_ALL", 3),
        ("REDIS_VERSION_NUM", 0x07_02_00),
    ] {
        redis.set(name, value)?;
    }
    redis.set("REDIS_VERSION", REDIS_VERSION)?;
    Ok(redis)
}

/// The message of a Lua error, without mlua's wrapping and tracebacks.
fn error_message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::RuntimeError(text) | mlua::Error::SyntaxError { message: text, .. } => text
            .split_once("\nstack traceback:")
            .map_or(text.as_str(), |(message, _)| message)
            .to_owned(),
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::MemoryError(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The line number in `user_script:N: …`, or 0.
fn line_of(message: &str) -> u64 {
    message
        .strip_prefix("user_script:")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    /// Runs script commands straight against a bare dataset.
    struct DatasetHost(Harness);

    impl Host for DatasetHost {
        fn call(&mut self, argv: Vec<Bytes>) -> Reply {
            if crate::commands::lookup(&argv[0]).is_none() {
                return Reply::error("ERR Unknown Redis command called from script");
            }
            self.0.run_argv(&argv)
        }
    }

    fn eval(
        engine: &mut Engine,
        host: &mut DatasetHost,
        body: &str,
        keys: &[&str],
        args: &[&str],
    ) -> Reply {
        let sha = match engine.compile(body.as_bytes()) {
            Ok(sha) => sha,
            Err(reply) => return reply,
        };
        let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::from(k.to_string())).collect();
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        engine.run(&sha, &keys, &args, host)
    }

    fn setup() -> (Engine, DatasetHost) {
        let engine = Engine::new(Arc::new(AtomicBool::new(false)));
        assert!(engine.is_ok(), "{engine:?}");
        (
            engine.unwrap_or_else(|_| unreachable!()),
            DatasetHost(Harness::new()),
        )
    }

    #[test]
    fn return_values_convert_as_in_redis() {
        let (mut e, mut h) = setup();
        assert_eq!(
            eval(&mut e, &mut h, "return {1, 2, 3, nil, 4}", &[], &[]),
            Reply::Array(vec![Reply::Int(1), Reply::Int(2), Reply::Int(3)])
        );
        assert_eq!(eval(&mut e, &mut h, "return 3.99", &[], &[]), Reply::Int(3));
        assert_eq!(eval(&mut e, &mut h, "return true", &[], &[]), Reply::Int(1));
        assert_eq!(eval(&mut e, &mut h, "return false", &[], &[]), Reply::Nil);
        assert_eq!(
            eval(&mut e, &mut h, "return 'x'", &[], &[]),
            Reply::bulk("x")
        );
        assert_eq!(
            eval(&mut e, &mut h, "return {ok='FINE'}", &[], &[]),
            Reply::status("FINE")
        );
        assert_eq!(
            eval(&mut e, &mut h, "return redis.status_reply('OK')", &[], &[]),
            Reply::Ok
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.error_reply('MY bad')",
                &[],
                &[]
            ),
            Reply::error("MY bad")
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return {KEYS[1], ARGV[2], #ARGV}",
                &["k"],
                &["a", "b"]
            ),
            Reply::Array(vec![Reply::bulk("k"), Reply::bulk("b"), Reply::Int(2)])
        );
    }

    #[test]
    fn redis_call_raises_and_pcall_returns_errors() {
        let (mut e, mut h) = setup();
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.call('SET', KEYS[1], ARGV[1])",
                &["s"],
                &["abc"]
            ),
            Reply::Ok
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.call('incr', KEYS[1])",
                &["s"],
                &[]
            ),
            Reply::error("ERR value is not an integer or out of range")
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "local r = redis.pcall('incr', KEYS[1]); return {type(r), r.err}",
                &["s"],
                &[]
            ),
            Reply::Array(vec![
                Reply::bulk("table"),
                Reply::bulk("ERR value is not an integer or out of range")
            ])
        );
        // A caught redis.call error is the error table itself.
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "local ok, err = pcall(redis.call, 'incr', KEYS[1]); return err.err",
                &["s"],
                &[]
            ),
            Reply::bulk("ERR value is not an integer or out of range")
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.call('get', 'missing')",
                &[],
                &[]
            ),
            Reply::Nil
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.call('get', 'missing') == false",
                &[],
                &[]
            ),
            Reply::Int(1)
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.call('incrby', 'n', 5)",
                &[],
                &[]
            ),
            Reply::Int(5)
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.call('set', 'f', 1.5)",
                &[],
                &[]
            ),
            Reply::Ok
        );
        assert_eq!(
            eval(&mut e, &mut h, "return redis.call('get', 'f')", &[], &[]),
            Reply::bulk("1.5")
        );
        let refused = eval(&mut e, &mut h, "return redis.call('get', {})", &[], &[]);
        assert_eq!(
            refused,
            Reply::error("ERR Lua redis lib command arguments must be strings or integers")
        );
    }

    #[test]
    fn the_sandbox_has_no_os_io_bytecode_or_new_globals() {
        let (mut e, mut h) = setup();
        for body in [
            "return os.time()",
            "return io.open('/etc/passwd')",
            "return require('os')",
            "return dofile('/etc/passwd')",
            "x = 1",
            "return debug.getinfo(1)",
        ] {
            let reply = eval(&mut e, &mut h, body, &[], &[]);
            assert!(reply.is_error(), "{body} gave {reply:?}");
        }
        let created = eval(&mut e, &mut h, "x = 1", &[], &[]);
        assert!(
            matches!(&created, Reply::Error(t) if t.contains("create global variable 'x'")),
            "{created:?}"
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "local f = loadstring(string.dump(function() return 1 end)); return f == nil",
                &[],
                &[]
            ),
            Reply::Int(1)
        );
        assert_eq!(
            eval(&mut e, &mut h, "return loadstring('return 7')()", &[], &[]),
            Reply::Int(7)
        );
        assert!(eval(&mut e, &mut h, "setmetatable(_G, nil); y = 2", &[], &[]).is_error());
        // Globals stay protected for the next script too.
        assert!(eval(&mut e, &mut h, "z = 3", &[], &[]).is_error());
    }

    #[test]
    fn libraries_and_helpers() {
        let (mut e, mut h) = setup();
        assert_eq!(
            eval(&mut e, &mut h, "return redis.sha1hex('')", &[], &[]),
            Reply::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        assert_eq!(
            eval(&mut e, &mut h, "return cjson.encode({a=1})", &[], &[]),
            Reply::bulk("{\"a\":1}")
        );
        assert_eq!(
            eval(&mut e, &mut h, "return cjson.encode({1,2,'x'})", &[], &[]),
            Reply::bulk("[1,2,\"x\"]")
        );
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "local t = cjson.decode('{\"n\":[1,2,3]}'); return t.n[3]",
                &[],
                &[]
            ),
            Reply::Int(3)
        );
        assert_eq!(eval(&mut e, &mut h, "return {bit.band(255, 15), bit.bor(1, 2, 4), bit.bxor(3, 1), bit.lshift(1, 4), bit.tohex(255, 2), bit.bnot(0)}", &[], &[]),
            Reply::Array(vec![Reply::Int(15), Reply::Int(7), Reply::Int(2), Reply::Int(16), Reply::bulk("ff"), Reply::Int(-1)]));
        assert_eq!(
            eval(
                &mut e,
                &mut h,
                "return redis.replicate_commands()",
                &[],
                &[]
            ),
            Reply::Int(1)
        );
        assert_eq!(eval(&mut e, &mut h, "local two = redis.call('get', 'nokey') == false; redis.setresp(3); return two and redis.call('get', 'nokey') == nil", &[], &[]), Reply::Int(1));
        assert!(eval(&mut e, &mut h, "redis.setresp(4)", &[], &[]).is_error());
    }

    #[test]
    fn compile_errors_and_runtime_errors_read_as_redis() {
        let (mut e, mut h) = setup();
        let reply = eval(&mut e, &mut h, "return (", &[], &[]);
        assert!(
            matches!(&reply, Reply::Error(t) if t.starts_with("ERR Error compiling script (new function): user_script:1:")),
            "{reply:?}"
        );
        let reply = eval(&mut e, &mut h, "local t = nil\nreturn t.x", &[], &[]);
        assert!(
            matches!(&reply, Reply::Error(t) if t.starts_with("ERR user_script:2:") && t.contains("on @user_script:2.")),
            "{reply:?}"
        );
    }

    #[test]
    fn a_script_cannot_exhaust_the_nodes_memory() {
        let (mut e, mut h) = setup();
        let reply = eval(&mut e, &mut h, "local t = {} for i = 1, 100 do t[i] = string.rep('x', 64 * 1024 * 1024) .. i end return #t", &[], &[]);
        assert!(
            matches!(&reply, Reply::Error(t) if t.contains("memory")),
            "{reply:?}"
        );
        assert_eq!(
            eval(&mut e, &mut h, "return 'still fine'", &[], &[]),
            Reply::bulk("still fine")
        );
    }

    #[test]
    fn script_kill_stops_a_running_loop() {
        let kill = Arc::new(AtomicBool::new(false));
        let mut engine = Engine::new(kill.clone()).unwrap_or_else(|_| unreachable!());
        let mut host = DatasetHost(Harness::new());
        let sha = engine.compile(b"while true do end").unwrap_or_default();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            kill.store(true, Ordering::Release);
        });
        let reply = engine.run(&sha, &[], &[], &mut host);
        let _ = killer.join();
        assert_eq!(reply, Reply::error(KILLED));
        // The next script runs normally.
        let sha = engine.compile(b"return 1").unwrap_or_default();
        assert_eq!(engine.run(&sha, &[], &[], &mut host), Reply::Int(1));
    }
}

//! The command spec: everything the cluster knows about a command, in one
//! value. Routing (local, read, write, script, membership), ACL checks, the
//! COMMAND family, script eligibility and MULTI all read these fields; none
//! of them decides by a command's name.

use bytes::Bytes;

use super::args::parse_i64;
use super::{ReadCtx, ReadFn, WriteCtx, WriteFn};
use crate::reply::Reply;

/// How a command is executed.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Reads the applied state; needs a read barrier, never the log.
    Read(ReadFn),
    /// Goes through the Raft log and runs inside apply.
    Write(WriteFn),
    /// Some invocations write, others only read (RL.POLICY): `writes` decides.
    Split {
        read: ReadFn,
        write: WriteFn,
        writes: fn(&[Bytes]) -> bool,
    },
    /// Each subcommand has its own spec and handler (ACL, SCRIPT); an
    /// unknown subcommand is refused.
    BySubcommand,
    /// Runs once on the leader's script executor (EVAL, SCRIPT LOAD, …).
    /// The function answers if one reaches apply anyway: inside MULTI.
    Script(WriteFn),
    /// A membership change the leader's Raft node carries out (RAFT.ADD,
    /// RAFT.REMOVE). The function answers if one reaches apply anyway.
    Membership(WriteFn),
    /// Answered by the client's connection in the server (PING, HELLO,
    /// ACL WHOAMI, …), never by the engine.
    Local,
}

/// Where an invocation runs: what the server's router matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The connection answers it.
    Local,
    /// The applied state, after a read barrier.
    Read,
    /// The Raft log.
    Write,
    /// The leader's script executor.
    Script,
    /// A Raft membership change on the leader.
    Membership,
}

/// Which arguments are keys, for ACL key patterns and script reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No keys.
    None,
    /// Arguments `first..=last` every `step`; a negative `last` counts from
    /// the end (Redis's first-key, last-key and step).
    Range { first: i32, last: i32, step: i32 },
    /// A count of keys at argument `at`, the keys right after it (RL.MCHECK,
    /// EVAL).
    NumKeys { at: usize },
}

impl KeySpec {
    /// Redis's key positions for `first`, `last`, `step` (none if `first` is 0).
    pub const fn range(first: i32, last: i32, step: i32) -> KeySpec {
        if first <= 0 {
            KeySpec::None
        } else {
            KeySpec::Range { first, last, step }
        }
    }
}

/// Whether an invocation reads its keys' values and whether it modifies
/// them, for `%R~`/`%W~` key patterns.
#[derive(Clone, Copy)]
pub enum KeyAccess {
    /// Read commands read; write commands read and write.
    Default,
    /// A write that only overwrites or removes (DEL, SETEX, EXPIRE, …).
    Overwrite,
    /// Decided by the arguments: `true` when this invocation only overwrites
    /// (SET without GET).
    ByArgs(fn(&[Bytes]) -> bool),
}

/// Static description of a command: what `COMMAND INFO` reports, what ACL
/// rules match, and how the server routes it.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name, as COMMAND reports it (a subcommand's own name).
    pub name: &'static str,
    /// Redis arity: positive means exact, negative means at least `-arity`
    /// (a subcommand's counts the command and the subcommand).
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub keys: KeySpec,
    pub access: KeyAccess,
    /// ACL categories without the `@`.
    pub categories: &'static [&'static str],
    pub handler: Handler,
    /// Subcommands ACL rules can name (`+config|get`) and NOPERM errors
    /// show; with [`Handler::BySubcommand`] they are also what runs.
    pub subcommands: &'static [CommandSpec],
}

impl std::fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSpec")
            .field("name", &self.name)
            .finish()
    }
}

impl CommandSpec {
    /// A command with no keys and no subcommands; the table fills in the rest.
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: &'static [&'static str],
        categories: &'static [&'static str],
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            keys: KeySpec::None,
            access: KeyAccess::Default,
            categories,
            handler,
            subcommands: &[],
        }
    }

    /// The subcommand `argv[1]` names, if this command has subcommands.
    pub fn subcommand(&self, argv: &[Bytes]) -> Option<&'static CommandSpec> {
        let arg = argv.get(1)?;
        self.subcommands
            .iter()
            .find(|sub| arg.eq_ignore_ascii_case(sub.name.as_bytes()))
    }

    /// The spec that runs `argv`: the subcommand's for a command that runs
    /// by subcommand, else this one. `None`: an unknown subcommand.
    pub fn resolve(&'static self, argv: &[Bytes]) -> Option<&'static CommandSpec> {
        match self.handler {
            Handler::BySubcommand => self.subcommand(argv),
            _ => Some(self),
        }
    }

    /// Redis's checks of a subcommand before anything else (authentication
    /// included): it exists and has the right number of arguments. Only for
    /// commands that run by subcommand.
    pub fn check_subcommand(&'static self, argv: &[Bytes]) -> Option<Reply> {
        if !matches!(self.handler, Handler::BySubcommand) {
            return None;
        }
        match self.resolve(argv) {
            None => Some(unknown_subcommand(self.name, argv)),
            Some(sub) if !sub.arity_ok(argv.len()) => Some(sub.wrong_arity(self)),
            Some(_) => None,
        }
    }

    /// Where this invocation runs (an unknown subcommand: locally, where
    /// it is refused).
    pub fn route(&'static self, argv: &[Bytes]) -> Route {
        match self.resolve(argv).map(|spec| spec.handler) {
            Some(Handler::Read(_)) => Route::Read,
            Some(Handler::Write(_)) => Route::Write,
            Some(Handler::Split { writes, .. }) => {
                if writes(argv) {
                    Route::Write
                } else {
                    Route::Read
                }
            }
            Some(Handler::Script(_)) => Route::Script,
            Some(Handler::Membership(_)) => Route::Membership,
            Some(Handler::Local) | Some(Handler::BySubcommand) | None => Route::Local,
        }
    }

    /// Whether the command may write (some invocations of a split command
    /// only read; see [`CommandSpec::writes`]).
    pub fn is_write(&self) -> bool {
        !matches!(self.handler, Handler::Read(_) | Handler::Local)
    }

    /// Whether this invocation changes replicated state (the log, the
    /// script executor or the membership).
    pub fn writes(&'static self, argv: &[Bytes]) -> bool {
        !matches!(self.route(argv), Route::Read | Route::Local)
    }

    /// The ACL categories of this invocation: its subcommand's, if it names one.
    pub fn categories_for(&self, argv: &[Bytes]) -> &'static [&'static str] {
        self.subcommand(argv)
            .map_or(self.categories, |sub| sub.categories)
    }

    /// The command's name as ACL errors and logs show it: `get`, `acl|setuser`.
    pub fn full_name(&self, argv: &[Bytes]) -> String {
        match self.subcommand(argv) {
            Some(sub) => format!("{}|{}", self.name, sub.name),
            None => self.name.to_owned(),
        }
    }

    /// The keys an invocation accesses, for ACL key permissions: the key
    /// positions, or the keys counted by a numkeys argument.
    pub fn acl_keys<'a>(&self, argv: &'a [Bytes]) -> Vec<&'a Bytes> {
        let KeySpec::NumKeys { at } = self.keys else {
            return self.keys(argv);
        };
        let numkeys = argv
            .get(at)
            .and_then(|n| parse_i64(n))
            .filter(|&n| n > 0)
            .map_or(0, |n| n as usize);
        argv.iter().skip(at + 1).take(numkeys).collect()
    }

    /// Whether an invocation reads the values of its keys and whether it
    /// modifies them, for `%R~`/`%W~` key patterns. Read commands read; a
    /// write command both reads and writes, except those that only
    /// overwrite or remove (SET without GET, DEL, EXPIRE, …).
    pub fn key_access(&'static self, argv: &[Bytes]) -> (bool, bool) {
        if !self.writes(argv) {
            return (true, false);
        }
        let only_writes = match self.access {
            KeyAccess::Default => false,
            KeyAccess::Overwrite => true,
            KeyAccess::ByArgs(only_writes) => only_writes(argv),
        };
        (!only_writes, true)
    }

    /// Checks the argument count (including the command name).
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_ok(self.arity, argc)
    }

    /// Redis's first-key, last-key and step, as COMMAND INFO reports them.
    pub fn key_positions(&self) -> (i32, i32, i32) {
        match self.keys {
            KeySpec::Range { first, last, step } => (first, last, step),
            KeySpec::None | KeySpec::NumKeys { .. } => (0, 0, 0),
        }
    }

    /// Whether a script may call this command: it has keys (a script names
    /// every key it touches) and is not flagged `noscript`.
    pub fn allowed_in_scripts(&self) -> bool {
        self.keys != KeySpec::None && !self.flags.contains(&"noscript")
    }

    /// The key arguments of `argv`, per the key positions.
    pub fn keys<'a>(&self, argv: &'a [Bytes]) -> Vec<&'a Bytes> {
        let KeySpec::Range { first, last, step } = self.keys else {
            return Vec::new();
        };
        let first = first as usize;
        let last = if last < 0 {
            (argv.len() as i64 + last as i64).max(0) as usize
        } else {
            last as usize
        };
        let step = step.max(1) as usize;
        (first..=last.min(argv.len().saturating_sub(1)))
            .step_by(step)
            .filter_map(|i| argv.get(i))
            .collect()
    }

    /// Runs this invocation inside apply: the write handler, or the read
    /// handler against the dataset being applied.
    pub(super) fn run_write(&'static self, ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
        let Some(spec) = self.resolve(argv) else {
            return unknown_subcommand(self.name, argv);
        };
        if !spec.arity_ok(argv.len()) {
            return spec.wrong_arity(self);
        }
        match spec.handler {
            Handler::Write(run)
            | Handler::Split { write: run, .. }
            | Handler::Script(run)
            | Handler::Membership(run) => run(ctx, argv),
            Handler::Read(run) => {
                let read = ReadCtx {
                    data: ctx.data,
                    now_ms: ctx.now_ms,
                    applied_index: ctx.log_index,
                };
                run(&read, argv)
            }
            Handler::Local | Handler::BySubcommand => self.not_here(argv),
        }
    }

    /// The engine's reply to a connection command (it never runs one).
    fn not_here(&self, argv: &[Bytes]) -> Reply {
        Reply::error(format!(
            "ERR '{}' is answered by the connection, not the engine",
            self.full_name(argv)
        ))
    }

    /// Runs this invocation against the applied state.
    pub(super) fn run_read(&'static self, ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
        let Some(spec) = self.resolve(argv) else {
            return unknown_subcommand(self.name, argv);
        };
        if !spec.arity_ok(argv.len()) {
            return spec.wrong_arity(self);
        }
        match spec.handler {
            Handler::Read(run) => run(ctx, argv),
            Handler::Split { read, writes, .. } if !writes(argv) => read(ctx, argv),
            Handler::Local | Handler::BySubcommand => self.not_here(argv),
            _ => Reply::error("ERR write command routed as a read"),
        }
    }

    /// Redis's arity error for this spec, a subcommand of `parent` (or
    /// `parent` itself).
    pub fn wrong_arity(&self, parent: &CommandSpec) -> Reply {
        if std::ptr::eq(self, parent) {
            Reply::wrong_arity(self.name)
        } else {
            Reply::error(format!(
                "ERR wrong number of arguments for '{}|{}' command",
                parent.name, self.name
            ))
        }
    }
}

/// Redis arity rule shared by every command.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// Redis's reply to an unknown subcommand of `command`.
pub fn unknown_subcommand(command: &str, argv: &[Bytes]) -> Reply {
    let sub = argv.get(1).map_or(&b""[..], |b| &b[..]);
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)]),
        command.to_ascii_uppercase()
    ))
}

//! Authentication and authorization of client connections, as Redis does
//! them: AUTH and HELLO AUTH, ACL users and permissions (NOAUTH, WRONGPASS,
//! NOPERM, ACL LOG), protected mode, the pre-AUTH request limits and the
//! cross-protocol (HTTP) guard.
//!
//! Users live in the replicated user table of the applied state (the
//! engine's `AclTable`): configured users loaded by every node, plus
//! `ACL SETUSER`/`DELUSER` changes that went through the log. A connection
//! caches its user between changes of that table.
//!
//! **Hook for TLS client certificates**: a connection whose certificate maps
//! to a user calls [`authenticate_as`] right after its [`Session`] is
//! created; see its documentation.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftlimit_engine::{permission, CommandSpec, Denial, Reply, User, DEFAULT_USER};

use crate::acl_log::Reason;
use crate::connection::Limits;
use crate::session::{AuthView as View, Session};
use crate::shared::Shared;

/// Redis's reply when a command needs authentication first.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's reply to bad credentials (the same whatever was wrong).
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// Sent, then the connection closed, to a non-loopback client while
/// protected mode is on and the default user has no password (Redis 7's text).
pub const PROTECTED_MODE_DENIED: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";
/// Logged (at most once a minute) when HTTP is sent to the RESP port.
pub const CROSS_PROTOCOL_WARNING: &str = "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection aborted.";

fn view(session: &mut Session, shared: &Shared) -> View {
    let generation = shared.node.acl_generation();
    match &session.auth.view {
        Some(view) if view.generation == generation => view.clone(),
        _ => {
            let view = {
                let state = shared.node.state().read();
                let acl = &state.data.acl;
                let default = acl.user(DEFAULT_USER);
                View {
                    generation,
                    user: acl.user(&session.auth.user).cloned(),
                    default_nopass: default.is_some_and(|u| u.nopass),
                    default_open: default.is_some_and(|u| u.nopass && u.enabled),
                }
            };
            session.auth.view = Some(view.clone());
            view
        }
    }
}

/// Sets a new connection's state: authenticated as `default` if that user
/// needs no password (Redis's `clientSetDefaultAuth`).
pub fn on_connect(session: &mut Session, shared: &Shared) {
    session.auth.authenticated = view(session, shared).default_open;
}

/// RESET: back to the default user, authenticated only if it needs no password.
pub fn reset(session: &mut Session, shared: &Shared) {
    session.auth.user = DEFAULT_USER.into();
    session.auth.view = None;
    session.info.lock().user = DEFAULT_USER.into();
    on_connect(session, shared);
}

/// Whether the connection must authenticate before running commands.
pub fn auth_required(session: &mut Session, shared: &Shared) -> bool {
    !session.auth.authenticated && !view(session, shared).default_open
}

/// Whether the default user has `nopass` (so AUTH with one argument is an error).
pub fn default_nopass(session: &mut Session, shared: &Shared) -> bool {
    view(session, shared).default_nopass
}

/// The request limits for the next command: Redis's stricter ones until
/// the client has authenticated.
pub fn decode_limits(session: &mut Session, shared: &Shared, limits: &Limits) -> Limits {
    Limits {
        unauthenticated: auth_required(session, shared),
        ..*limits
    }
}

fn become_user(session: &mut Session, user: Arc<User>) {
    session.auth.user = user.name.clone();
    session.auth.authenticated = true;
    session.auth.view = None;
    session.info.lock().user = user.name.clone();
}

/// AUTH and HELLO AUTH: checks a user's password. `via` is the command used
/// (`AUTH`, `HELLO`), which ACL LOG records. Neither the password nor the
/// command's arguments are logged anywhere.
pub fn authenticate(
    session: &mut Session,
    shared: &Shared,
    user: &[u8],
    password: &[u8],
    via: &[u8],
) -> Result<(), Reply> {
    let name = String::from_utf8_lossy(user).into_owned();
    let found = shared.node.state().read().data.acl.user(&name).cloned();
    match found {
        Some(u) if u.enabled && u.check_password(password) => {
            become_user(session, u);
            Ok(())
        }
        found => {
            if found.is_none() {
                // As much work as a real check: timing does not tell
                // whether the user exists.
                std::hint::black_box(raftlimit_engine::hash_password(password));
            }
            let info = session.info.lock().line();
            shared.security.acl_log.add(
                Reason::Auth,
                String::from_utf8_lossy(via).into_owned(),
                name,
                info,
            );
            Err(Reply::error(WRONGPASS))
        }
    }
}

/// Whether an authenticating command with these credentials would be
/// refused here although the leader might accept it: this node is a
/// follower, and its copy of the user table lacks the user, has it
/// disabled, or has another password. A user created or changed through
/// another node an instant ago is the case this catches; the caller then
/// catches up with the leader first. Side-effect free (nothing is logged).
pub fn may_be_behind_for(shared: &Shared, credentials: Option<(&[u8], &[u8])>) -> bool {
    let Some((user, password)) = credentials else {
        return false;
    };
    if shared.node.status().is_leader {
        return false;
    }
    let name = String::from_utf8_lossy(user);
    let state = shared.node.state().read();
    !state
        .data
        .acl
        .user(&name)
        .is_some_and(|u| u.enabled && u.check_password(password))
}

/// Authenticates a connection as `user` without a password, for a
/// connection whose identity was established otherwise — a TLS client
/// certificate whose CN names an ACL user. The caller (the TLS listener)
/// calls it once, right after the session is created and before any command
/// is read. It succeeds if the user exists and is enabled (`on`); otherwise
/// the connection stays unauthenticated, as the default user, and the error
/// is Redis's WRONGPASS (the caller may log it or ignore it).
pub fn authenticate_as(session: &mut Session, shared: &Shared, user: &str) -> Result<(), Reply> {
    let found = shared.node.state().read().data.acl.user(user).cloned();
    match found {
        Some(u) if u.enabled => {
            become_user(session, u);
            Ok(())
        }
        _ => Err(Reply::error(WRONGPASS)),
    }
}

/// Whether protected mode refuses a client from `peer`: protected mode is on,
/// the default user has no password, and the client is not on loopback.
pub fn protected_mode_denies(shared: &Shared, peer: IpAddr) -> bool {
    if !shared.config.protected_mode || peer.to_canonical().is_loopback() {
        return false;
    }
    let state = shared.node.state().read();
    state.data.acl.user(DEFAULT_USER).is_some_and(|u| u.nopass)
}

/// Whether a command is really an HTTP request line or header (`POST …`,
/// `Host: …`): a cross-protocol attack, as Redis treats it.
pub fn is_cross_protocol(argv: &[Bytes]) -> bool {
    argv.first().is_some_and(|name| {
        name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
    })
}

/// Logs Redis's warning about a cross-protocol attack, at most once a minute.
pub fn warn_cross_protocol(shared: &Shared, peer: SocketAddr) {
    let mut last = shared.security.last_attack_warning.lock();
    if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(Instant::now());
    tracing::warn!(client = %peer, "{CROSS_PROTOCOL_WARNING}");
}

/// What [`check`] decided.
#[derive(Debug)]
pub enum Verdict {
    Allow,
    /// Reply with this error instead of running the command.
    Deny(Reply),
    /// The connection's user was deleted: close it, as Redis does.
    Close,
}

/// Authentication and ACL checks before a command runs, in Redis's order
/// (after the command was found and its arity checked): NOAUTH, then
/// command permission, then key permissions. Denials are recorded in ACL LOG.
pub fn check(
    session: &mut Session,
    shared: &Shared,
    argv: &[Bytes],
    spec: &'static CommandSpec,
) -> Verdict {
    let view = view(session, shared);
    if !session.auth.authenticated && !view.default_open {
        if spec.flags.contains(&"no_auth") {
            return Verdict::Allow;
        }
        return Verdict::Deny(Reply::error(NOAUTH));
    }
    let Some(user) = view.user else {
        return Verdict::Close;
    };
    match permission(&user, spec, argv) {
        Ok(()) => Verdict::Allow,
        Err(denial) => {
            let info = session.info.lock().line();
            let reply = denial.message(&user.name);
            let (reason, object) = match denial {
                Denial::Command(name) => (Reason::Command, name),
                Denial::Key(index) => (
                    Reason::Key,
                    String::from_utf8_lossy(&argv[index]).into_owned(),
                ),
            };
            shared
                .security
                .acl_log
                .add(reason, object, user.name.clone(), info);
            Verdict::Deny(Reply::error(reply))
        }
    }
}

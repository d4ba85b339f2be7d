//! The `raftlimit-server` binary: parses flags, sets up logging and runs a
//! node until SIGINT or SIGTERM (SIGHUP reloads the TLS certificates);
//! also writes encryption key files (`keygen`) and development certificates
//! (`certs`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use raftlimit_server::certs::{generate_dev, DevCerts};
use raftlimit_server::config::Overrides;
use raftlimit_server::{logging, Config, Server};

/// mimalloc instead of the C library's malloc: allocation-heavy paths
/// (per-command buffers, replies, snapshot images) run faster and freed
/// memory goes back to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "raftlimit-server",
    version,
    about = "A Raft-replicated rate limiter that speaks the Redis protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (the default).
    Run,
    /// Exit 0 if the node at the configured HTTP address is ready, 1 otherwise
    /// (for container health checks; the image has no shell or curl).
    Healthcheck {
        /// Ask /healthz (alive) instead of /readyz (serving).
        #[arg(long)]
        live: bool,
    },
    /// Write an encryption key file (mode 0600) for encryption at rest.
    ///
    /// Without options, creates FILE with one new random key (id 1) and
    /// refuses to overwrite an existing file. See docs/security.md.
    Keygen {
        /// The key file.
        file: PathBuf,
        /// Add a new random key to FILE and make it current; older keys stay
        /// so existing records still open.
        #[arg(long, conflicts_with = "remove")]
        rotate: bool,
        /// Remove key ID from FILE once no record uses it (never the current key).
        #[arg(long, value_name = "ID")]
        remove: Option<u32>,
    },
    /// Generate a development CA, node and client certificates (keeps an
    /// existing CA unless --new-ca).
    Certs {
        /// Output directory.
        #[arg(long, default_value = "deploy/tls")]
        dir: PathBuf,
        /// Node certificates for nodes 1..=N.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Common name of the client certificate.
        #[arg(long, default_value = "client")]
        client_cn: String,
        /// Extra DNS name or IP address for every node certificate (repeatable).
        #[arg(long = "san")]
        extra_names: Vec<String>,
        /// Replace the CA as well (every node and client needs the new one).
        #[arg(long)]
        new_ca: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Certs {
            dir,
            nodes,
            client_cn,
            extra_names,
            new_ca,
        } => certs(DevCerts {
            dir,
            nodes,
            client_cn,
            extra_names,
            new_ca,
        }),
        Command::Keygen {
            file,
            rotate,
            remove,
        } => keygen(&file, rotate, remove),
        Command::Run => run(Config::load(&cli.overrides).context("loading configuration")?),
        Command::Healthcheck { live } => healthcheck(
            &Config::load(&cli.overrides).context("loading configuration")?,
            live,
        ),
    }
}

fn certs(opts: DevCerts) -> anyhow::Result<()> {
    for path in generate_dev(&opts).context("generating certificates")? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn keygen(file: &std::path::Path, rotate: bool, remove: Option<u32>) -> anyhow::Result<()> {
    use raftlimit_server::keys;
    let ring = match (rotate, remove) {
        (true, _) => keys::rotate_key_file(file)?,
        (false, Some(id)) => keys::remove_key(file, id)?,
        (false, None) => keys::create_key_file(file)?,
    };
    println!(
        "{}: key ids {:?}, current key id {}",
        file.display(),
        ring.key_ids(),
        ring.current_key_id()
    );
    Ok(())
}

fn run(config: Config) -> anyhow::Result<()> {
    logging::init(config.log_format, &config.log, config.node_id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind_and_start(config)
            .await
            .context("starting the node")?;
        wait_for_signal(&server).await?;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}

/// Waits for SIGINT or SIGTERM; reloads TLS certificates on each SIGHUP.
async fn wait_for_signal(server: &Server) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            result = tokio::signal::ctrl_c() => return result.context("waiting for Ctrl-C"),
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => match server.tls() {
                Some(tls) => tls.reload_and_log("SIGHUP"),
                None => tracing::info!("SIGHUP: TLS is not configured; nothing to reload"),
            },
        }
    }
}

fn healthcheck(config: &Config, live: bool) -> anyhow::Result<()> {
    let path = if live { "/healthz" } else { "/readyz" };
    let addr = config.http_addr;
    let (status, body) =
        raftlimit_server::http::probe(addr, path, std::time::Duration::from_secs(2))
            .with_context(|| format!("asking {addr}{path}"))?;
    if status == 200 {
        Ok(())
    } else {
        anyhow::bail!("{addr} is not ready: {status} {}", body.trim_end())
    }
}

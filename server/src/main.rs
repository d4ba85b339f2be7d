//! The `raftlimit-server` binary: parses flags, sets up logging and runs a
//! node until SIGINT or SIGTERM.

use anyhow::Context;
use clap::{Parser, Subcommand};
use raftlimit_server::config::Overrides;
use raftlimit_server::{logging, Config, Server};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli.overrides).context("loading configuration")?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(config),
        Command::Healthcheck { live } => healthcheck(&config, live),
    }
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
        wait_for_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn healthcheck(config: &Config, live: bool) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let path = if live { "/healthz" } else { "/readyz" };
    let mut addr = config.http_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if response.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        anyhow::bail!(
            "{} is not ready: {}",
            addr,
            response.lines().next().unwrap_or("")
        )
    }
}

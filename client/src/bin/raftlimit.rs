//! The `raftlimit` command-line tool (see `raftlimit --help`).

use std::process::ExitCode;

use clap::Parser;
use raftlimit_client::cli::{run, Cli, EXIT_ERROR};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let code = runtime.block_on(async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        run(cli, &mut out, &mut err).await
    });
    ExitCode::from(code)
}

//! `cloudbase-auth`: the command-line entry point. See `cloudbase-auth --help`.

use clap::Parser as _;
use cloudbase_auth_http::cli::{Cli, Command, LogFormat, ServeArgs, serve_exit_code};
use cloudbase_auth_http::server::Server;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(&args),
        #[cfg(feature = "client")]
        Command::Client(command) => cloudbase_auth_http::client::cli::run_blocking(command),
        other => {
            eprintln!("cloudbase-auth: {other:?} is not available in this build");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr. Crates that could print request details at debug level are
/// capped at info whatever RUST_LOG says, so no secret can reach a log line.
fn init_logging(format: LogFormat) {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&base)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("hyper=info".parse().expect("static directive"))
        .add_directive("hyper_util=info".parse().expect("static directive"))
        .add_directive("reqwest=info".parse().expect("static directive"))
        .add_directive("rustls=info".parse().expect("static directive"))
        .add_directive("sqlx=warn".parse().expect("static directive"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cloudbase-auth: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudbase-auth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let stop = shutdown_signal();
        let server = match Server::start(config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("cloudbase-auth: {e}");
                return ExitCode::from(serve_exit_code(&e));
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "cloudbase-auth listening on http://{}",
            server.local_addr()
        );
        if server.admin_token_generated()
            && let Some(token) = server.admin_token()
        {
            // The only place the generated admin token ever appears.
            let _ = writeln!(out, "admin token: {token}");
        }
        let _ = out.flush();
        drop(out);
        stop.await;
        tracing::info!("shutting down");
        match server.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cloudbase-auth: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Registers the SIGINT and SIGTERM handlers now, before the startup line is printed
/// (a signal sent right after that line must stop the server gracefully, not kill it),
/// and returns a future that resolves on either. Must run inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

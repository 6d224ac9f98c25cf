//! `smsguard-cloud`: the cloud service binary.
//!
//! * `serve`: the gRPC service (see `smsguard_server::config::ServerConfig` for every setting).
//! * `keygen --out DIR`: an Ed25519 key pair for signing edge model packages.
//! * `eval`: in-process evaluation of the fused verdict on labelled TSV files.
//! * `console-password`: the hash of an operator console password (read from stdin).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use smsguard_server::config::ServerConfig;

#[derive(Debug, Parser)]
#[command(version, about = "The smsguard cloud service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve protocol v1 over gRPC until SIGTERM or ctrl-c (SIGHUP reloads rules, feed and the
    /// API keys of --config).
    Serve(ServeArgs),
    /// Generate the model-signing key pair: DIR/signing.key (hex secret, 0600) and
    /// DIR/signing.pub (hex public key, to pin on the edge).
    Keygen(KeygenArgs),
    /// Score labelled TSV files with the fused cloud verdict (embedded models) and report.
    Eval(smsguard_server::eval::EvalArgs),
    /// Ask a running server's standard health service; exit status 0 only when it is SERVING
    /// (the container health check).
    Probe(ProbeArgs),
    /// Read the operator console's admin password from stdin (one line) and print the
    /// `console_admin_password_hash` value for it (salted PBKDF2-HMAC-SHA256).
    ConsolePassword(ConsolePasswordArgs),
}

#[derive(Debug, clap::Args)]
struct ConsolePasswordArgs {
    /// PBKDF2 iterations.
    #[arg(long, default_value_t = smsguard_server::console::auth::DEFAULT_ITERATIONS)]
    iterations: u32,
}

#[derive(Debug, clap::Args)]
struct ProbeArgs {
    /// Server URL (plaintext; a TLS server is probed through its own health tooling).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    url: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file; SMSGUARD_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    /// gRPC address (default 127.0.0.1:50051; port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve without TLS; refused on a non-loopback address unless --force-plaintext.
    #[arg(long)]
    plaintext: bool,
    /// Allow --plaintext on a non-loopback address.
    #[arg(long)]
    force_plaintext: bool,
    /// Folder of the stores and the default signing key.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Shared state of the replicas: `redis://HOST:PORT/DB` (default: in this process).
    #[arg(long)]
    state: Option<String>,
    /// Prometheus metrics address (GET /metrics).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Operator console address (HTTP, off by default; needs console_admin_password_hash).
    #[arg(long)]
    console_listen: Option<SocketAddr>,
    /// Allow --console-listen on a non-loopback address.
    #[arg(long)]
    console_allow_remote: bool,
    /// Do not seed an empty similarity memory from the training corpora.
    #[arg(long)]
    no_seed: bool,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Folder to write signing.key and signing.pub into.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing key pair.
    #[arg(long)]
    force: bool,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Keygen(args) => keygen(args),
        Command::Eval(args) => smsguard_server::eval::run(args),
        Command::Probe(args) => probe(args),
        Command::ConsolePassword(args) => console_password(args),
    }
}

fn console_password(args: ConsolePasswordArgs) -> Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "empty password");
    let hash = smsguard_server::console::auth::PasswordHash::create(password, args.iterations)?;
    println!("{hash}");
    Ok(())
}

fn probe(args: ProbeArgs) -> Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(args.url.clone())?
            .timeout(std::time::Duration::from_millis(args.timeout_ms))
            .connect_timeout(std::time::Duration::from_millis(args.timeout_ms))
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", args.url))?;
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let answer = HealthClient::new(channel).check(request).await?;
        anyhow::Ok(answer.into_inner().status())
    })?;
    println!("{}", status.as_str_name());
    anyhow::ensure!(status == ServingStatus::Serving, "server is not serving");
    Ok(())
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve_config(args: &ServeArgs) -> Result<ServerConfig> {
    Ok(ServerConfig::load(args.config.as_deref(), |config| {
        args.apply_to(config)
    })?)
}

impl ServeArgs {
    /// The flags given, over the file and environment settings.
    fn apply_to(&self, config: &mut ServerConfig) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if self.plaintext {
            config.plaintext = true;
        }
        if self.force_plaintext {
            config.force_plaintext = true;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(state) = &self.state {
            config.state = Some(state.clone());
        }
        if let Some(metrics) = self.metrics_listen {
            config.metrics_listen = Some(metrics);
        }
        if let Some(console) = self.console_listen {
            config.console_listen = Some(console);
        }
        if self.console_allow_remote {
            config.console_allow_remote = true;
        }
        if self.no_seed {
            config.seed_from_corpora = false;
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    init_logging(args.log_json);
    let config = serve_config(&args).context("invalid configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Handlers first: a signal that arrives once "listening" is printed must find them.
        let mut signals = StopSignals::install()?;
        let server = smsguard_server::spawn(config).await?;
        // One machine-readable line on stdout, for scripts and tests that asked for port 0.
        println!("listening {}", server.addr);
        if let Some(metrics) = server.metrics_addr {
            println!("metrics {metrics}");
        }
        if let Some(console) = server.console_addr {
            println!("console http://{console}/");
        }
        signals.wait_for_stop(&server).await;
        tracing::info!("stopping: finishing in-flight requests");
        server.shutdown().await?;
        Ok(())
    })
}

/// SIGTERM and SIGINT stop the server gracefully; SIGHUP reloads rules, feed and API keys.
#[cfg(unix)]
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait_for_stop(&mut self, server: &smsguard_server::RunningServer) {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
                _ = self.hangup.recv() => match server.reload().await {
                    Ok(summary) => tracing::info!(?summary, "SIGHUP: reloaded"),
                    Err(e) => tracing::warn!(error = %e, "SIGHUP: reload failed"),
                },
            }
        }
    }
}

#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn install() -> Result<Self> {
        Ok(StopSignals)
    }

    async fn wait_for_stop(&mut self, _server: &smsguard_server::RunningServer) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let key = smsguard_server::package::write_key_pair(&args.out, args.force)?;
    let public = key.verifying_key();
    println!(
        "wrote {} (secret, mode 0600) and {}",
        args.out
            .join(smsguard_server::package::SECRET_KEY_FILE)
            .display(),
        args.out
            .join(smsguard_server::package::PUBLIC_KEY_FILE)
            .display()
    );
    println!("public key {}", public.to_hex());
    println!("key id {}", public.key_id());
    Ok(())
}

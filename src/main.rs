//! The `intake` binary: `serve` (default), `migrate`, `openapi`, `token`,
//! `upload` (a client of a running server) and `healthcheck` (the
//! container's health check).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use intake::auth::jwt::JwtKeys;
use intake::auth::tokens::{
    DEFAULT_TTL_SECONDS, check_ttl, mint_admin_token, mint_integration_token,
    parse_integration_scopes,
};
use intake::ids::{IntegrationId, TokenId};
use intake::settings::Settings;
use intake::startup::Application;
use intake::store::Store;

#[derive(Parser)]
#[command(
    name = "intake",
    version,
    about = "Ingestion API for cases and customers"
)]
struct Cli {
    /// Settings file (default: ./intake.toml when it exists).
    #[arg(long, global = true, env = "INTAKE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Create demo data (group, team, staff, category, campaign, integration)
    /// and print a token of the demo integration, alone on stdout.
    SeedDemo,
    /// Print a token, alone on one line, signed like the server with the same settings.
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["admin", "integration"])))]
    Token {
        /// An operator token with the `admin` scope.
        #[arg(long)]
        admin: bool,
        /// A token for this integration (its id), recorded like one minted by the API.
        #[arg(long, value_name = "ID", requires = "scope")]
        integration: Option<IntegrationId>,
        /// A scope of the integration token (repeat for several).
        #[arg(long, value_name = "SCOPE")]
        scope: Vec<String>,
        /// Lifetime in seconds, from 60 (admin default 3,600, at most
        /// INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS; integration default 30 days, at most one year).
        #[arg(long, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
        ttl: Option<u64>,
    },
    /// Revoke an admin token by its jti (integration tokens: `DELETE
    /// /v1/admin/integrations/{id}/tokens/{jti}`). Takes effect at once on
    /// every replica.
    RevokeAdminToken {
        /// The token's id (`jti`, printed by `intake token --admin` on stderr).
        jti: TokenId,
    },
    /// Import a file (CSV, XLSX, XLS) into a running server: upload it, see
    /// what its check found, confirm, follow the import, get the failed rows.
    Upload(Box<intake::cli::upload::UploadArgs>),
    /// GET /healthz of a server on this host and exit 0 when it answers 200,
    /// 1 otherwise (a container's HEALTHCHECK: no curl needed in the image).
    Healthcheck {
        /// The server's address; an unspecified IP (0.0.0.0, ::) is reached
        /// on the loopback.
        #[arg(long, env = "INTAKE_BIND", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// How long the check may take, in seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    intake::install_tls_provider();
    if let Command::Openapi = command {
        return match intake::api_doc::openapi().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("cannot render the OpenAPI document: {e}")),
        };
    }
    // A client of a server: none of the server's settings.
    let command = match command {
        Command::Upload(args) => return intake::cli::upload::run(*args),
        Command::Healthcheck { addr, timeout } => {
            return match healthcheck(addr, Duration::from_secs(timeout)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("healthcheck: {e}")),
            };
        }
        command => command,
    };
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("intake: invalid settings: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve | Command::Openapi => serve(settings).await,
            Command::Upload(_) | Command::Healthcheck { .. } => {
                unreachable!("run above, before the settings are loaded")
            }
            Command::SeedDemo => {
                let keys = JwtKeys::from_settings(&settings)?;
                let store = Store::connect(&settings).await?;
                store.migrate().await?;
                let demo = intake::demo::seed(&store, &keys).await?;
                eprintln!(
                    "intake: demo group {}, campaign {}, integration {} (token with every integration scope, 30 days):",
                    demo.group_id, demo.campaign_id, demo.integration_id
                );
                println!("{}", demo.token);
                Ok(())
            }
            Command::Migrate => {
                let store = Store::connect(&settings).await?;
                store.migrate().await?;
                eprintln!("intake: migrations applied to {}", settings.database_url);
                Ok(())
            }
            Command::Token {
                integration: None,
                ttl,
                ..
            } => {
                let keys = JwtKeys::from_settings(&settings)?;
                let ttl = Duration::from_secs(ttl.unwrap_or(3600));
                let store = Store::connect(&settings).await?;
                store.migrate().await?;
                let (token, jti) =
                    mint_admin_token(&store, &keys, ttl, settings.admin_token_max_ttl)
                        .await
                        .map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
                eprintln!(
                    "intake: admin token {jti} (revoke it with `intake revoke-admin-token {jti}`):"
                );
                println!("{token}");
                Ok(())
            }
            Command::RevokeAdminToken { jti } => {
                let store = Store::connect(&settings).await?;
                store.migrate().await?;
                match store.revoke_admin_token(jti).await? {
                    Some(_) => {
                        eprintln!("intake: admin token {jti} revoked");
                        Ok(())
                    }
                    None => Err(anyhow::anyhow!("no admin token has the jti {jti}")),
                }
            }
            Command::Token {
                integration: Some(id),
                scope,
                ttl,
                ..
            } => {
                let scopes = parse_integration_scopes(&scope).map_err(|errors| {
                    let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
                    anyhow::anyhow!("--scope: {}", messages.join("; "))
                })?;
                let ttl = check_ttl(ttl.unwrap_or(DEFAULT_TTL_SECONDS))
                    .map_err(|e| anyhow::anyhow!("--ttl: {}", e.message))?;
                let keys = JwtKeys::from_settings(&settings)?;
                let store = Store::connect(&settings).await?;
                store.migrate().await?;
                let (token, _) = mint_integration_token(&store, &keys, id, &scopes, ttl)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
                println!("{token}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("{e:#}")),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let _telemetry = intake::telemetry::init(&settings)?;
    let application = Application::build(settings.clone()).await?;
    tracing::info!(
        address = %settings.bind.ip(),
        port = application.port(),
        database = %settings.database_url,
        backend = application.state().store.backend(),
        "intake is listening; docs at /docs/"
    );
    tracing::info!(
        "get an admin token with `intake token --admin` (from the source tree: `cargo run --release -- token --admin`), run with the same settings"
    );
    application.run_until_stopped().await?;
    Ok(())
}

/// GET /healthz over plain HTTP/1.1 with std only; Ok when the status is 200.
fn healthcheck(mut addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{addr}: {e}"))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("{addr}: {e}")),
        }
        if head[..len].contains(&b'\n') {
            break;
        }
    }
    let status_line = String::from_utf8_lossy(&head[..len]);
    let status_line = status_line.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("{addr}: GET /healthz answered {status_line:?}")),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("intake: {message}");
    ExitCode::FAILURE
}

//! The command line: `serve`, `config check`, `migrate`, `leads`, `users`, `advertisers`, `backup`, `restore`, `store copy`, `sandbox-crm`, `sandbox-pbx`.

mod advertisers;
mod backup;
mod leads;
mod store;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DestinationConfig, LogFormat, Problem, SmtpConfig, SourceKind, TelephonySource};
use crate::connectors::{Connector, DeliveryError, RouteProblem};
use crate::notify::email::Mailer;
use crate::startup::{App, Role};
use crate::store::Store;

#[derive(Parser)]
#[command(name = "leadgate", version, about = "Self-hosted lead gateway: every lead reaches the CRM exactly once.")]
struct Cli {
    /// The configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(long, global = true, env = "LEADGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accept leads over HTTP and deliver them to the CRM.
    Serve {
        /// `intake` or `worker` splits the work between nodes sharing a PostgreSQL store.
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
        /// The address and port to listen on, e.g. 0.0.0.0:8080 or localhost:8080; overrides
        /// `[server] listen`.
        #[arg(long, value_parser = parse_listen)]
        listen: Option<SocketAddr>,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Create or upgrade the database, then exit.
    Migrate,
    /// List and inspect leads; re-send dead ones.
    Leads {
        #[command(subcommand)]
        action: leads::LeadsAction,
    },
    /// Manage the operator console's users (passwords are asked for, never taken as arguments).
    Users {
        #[command(subcommand)]
        action: users::UsersAction,
    },
    /// Manage a portal source's advertisers; write the portal's batch file.
    Advertisers {
        #[command(subcommand)]
        action: advertisers::AdvertisersAction,
    },
    /// Copy a running SQLite installation (database and website leads' files) into one tar file.
    Backup {
        /// The archive to write (a tar of the database and the files folder); never overwritten.
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup made by `leadgate backup` in place of the configured database and files folder.
    Restore {
        /// An archive made by `leadgate backup`.
        #[arg(long)]
        from: PathBuf,
        /// Replace a database that exists (never one a running gateway has open).
        #[arg(long)]
        force: bool,
    },
    /// Move the store to another database.
    Store {
        #[command(subcommand)]
        action: store::StoreAction,
        #[command(flatten)]
        _no_config: NoConfig,
    },
    /// Run a CRM emulator on its own, for demos and manual tests.
    SandboxCrm {
        /// `amocrm`, or `session` for a company CRM with a cookie session and a CSRF header.
        #[arg(long, value_enum, default_value_t = SandboxKind::Amocrm)]
        kind: SandboxKind,
        /// The address and port the emulator listens on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        #[command(flatten)]
        _no_config: NoConfig,
    },
    /// Run a cloud PBX emulator on its own: it serves the provider's API and plays calls to a URL.
    SandboxPbx {
        /// Which PBX to be: its events, signatures and API.
        #[arg(long, value_enum)]
        provider: SandboxPbxProvider,
        /// The address and port the emulator listens on.
        #[arg(long, default_value = "127.0.0.1:8092")]
        listen: SocketAddr,
        #[command(flatten)]
        _no_config: NoConfig,
        /// A scenario to play once the PBX is up (`GET /_control/scenarios` lists them).
        #[arg(long, requires = "to")]
        play: Option<String>,
        /// Where `--play` sends the call's events: the URL leadgate receives this provider on.
        #[arg(long, requires = "play")]
        to: Option<url::Url>,
    },
}

/// Stands in for the global `--config` on commands that read no configuration, so that their help
/// does not offer it. It is still accepted and ignored: clap hands it the value of
/// `LEADGATE_CONFIG`, which a shell set up for the other commands may well carry.
#[derive(clap::Args)]
struct NoConfig {
    #[arg(long = "config", id = "config", hide = true)]
    _config: Option<PathBuf>,
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    crate::config::listen_address(text).map_err(|problem| problem.message)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SandboxKind {
    Amocrm,
    Session,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SandboxPbxProvider {
    Telphin,
    Zadarma,
    Mango,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Report every problem of the configuration, including pipelines and stages missing from the CRM.
    Check,
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // `serve` starts its logging once its configuration says in which format.
    if !matches!(cli.command, Command::Serve { .. }) {
        crate::telemetry::init(LogFormat::Text);
    }

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime can be built");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { role, listen } => serve(cli.config, role, listen).await,
            Command::Config { action: ConfigAction::Check } => check(cli.config).await,
            Command::Migrate => migrate(cli.config).await,
            Command::Leads { action } => match load(cli.config) {
                Ok(config) => leads::run(action, &config).await,
                Err(code) => Ok(code),
            },
            Command::Users { action } => match load(cli.config) {
                Ok(config) => users::run(action, &config).await,
                Err(code) => Ok(code),
            },
            Command::Advertisers { action } => match load(cli.config) {
                Ok(config) => advertisers::run(action, &config).await,
                Err(code) => Ok(code),
            },
            Command::Backup { to } => match load(cli.config) {
                Ok(config) => backup::backup(&config, &to).await,
                Err(code) => Ok(code),
            },
            Command::Restore { from, force } => match load(cli.config) {
                Ok(config) => backup::restore(&config, &from, force).await,
                Err(code) => Ok(code),
            },
            Command::Store { action, .. } => store::run(action).await,
            Command::SandboxCrm { kind: SandboxKind::Amocrm, listen, .. } => sandbox_crm(listen).await,
            Command::SandboxCrm { kind: SandboxKind::Session, listen, .. } => sandbox_session_crm(listen).await,
            Command::SandboxPbx { provider, listen, play, to, .. } => sandbox_pbx(provider, listen, play.zip(to)).await,
        }
    });
    // A task still blocked on the file system must not keep a stopped gateway alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result.unwrap_or_else(|error| {
        eprintln!("leadgate: {error:#}");
        ExitCode::FAILURE
    })
}

fn load(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.as_deref()).map_err(|error| {
        eprint!("{error}");
        ExitCode::from(2)
    })
}

async fn serve(path: Option<PathBuf>, role: Role, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let mut config = match load(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    config.listen = listen.unwrap_or(config.listen);
    crate::telemetry::init(config.log_format);
    if role != Role::All && !config.store.is_postgres() {
        let role =
            clap::ValueEnum::to_possible_value(&role).map(|value| value.get_name().to_owned()).unwrap_or_default();
        eprintln!("leadgate: --role {role} needs a store all nodes share: set [store] url = \"postgres://…\"");
        return Ok(ExitCode::from(2));
    }
    // A SQLite file is one node's: held by this process alone, whatever a previous process of
    // the node was delivering when it died is its to take over at once.
    let sole_use = if config.store.is_postgres() {
        None
    } else {
        match crate::store::SqliteStore::claim_sole_use(&config.store.url) {
            Ok(sole_use) => sole_use,
            Err(error) => {
                eprintln!("leadgate: {error}");
                return Ok(ExitCode::from(2));
            }
        }
    };
    let app = App::build(config).await?;
    if let (Some(_), Store::Sqlite(store)) = (&sole_use, &app.store) {
        let (leads, feedback) = store.release_leases().await?;
        if leads + feedback > 0 {
            tracing::info!(leads, feedback, "released what a previous run of this node held, to be delivered now");
        }
    }
    print_banner(&app);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    app.run(role, shutdown).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_banner(app: &App) {
    let base = format!("http://{}", app.address);
    println!("leadgate is listening on {base}");
    if let Some(sandbox) = &app.sandbox_url {
        println!();
        println!("*** SANDBOX CRM: no [destinations.*] is configured, so leads go to the built-in amoCRM emulator");
        println!("*** at {sandbox}. It is NOT a real CRM. Its contents: {sandbox}/_emulator/state");
        match &app.sandbox_file {
            Some(file) => println!(
                "*** Its records are kept in {} (saved every second: a crash loses at most the last second).",
                file.display()
            ),
            None => println!("*** It FORGETS everything at every restart (no SQLite file to keep it beside)."),
        }
    }
    if let Some(key) = &app.demo_key {
        println!();
        println!(
            "Demo source \"{}\" (key stored in the database, the same at every start): {key}",
            crate::startup::DEMO_SOURCE
        );
        // The answer's id goes into $id, so the second command reads the lead the first made.
        println!("Send a lead (a shell variable keeps the id it is given):");
        println!(
            "  id=$(curl -s {base}/api/v1/leads -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
             -d '{{\"name\":\"Иван Петров\",\"phone\":\"+7 999 123-45-67\",\"comment\":\"demo\"}}' \
             | grep -o '\"id\":[0-9]*' | head -n1 | cut -d: -f2); echo \"lead $id\""
        );
        println!("Then see what happened to it:");
        println!("  curl -s {base}/api/v1/leads/$id -H 'Authorization: Bearer {key}'");
    }
    if let Some((key, pbx)) = &app.demo_pbx {
        println!();
        println!(
            "Demo telephony source \"{}\", fed by a Telphin PBX emulator at {pbx} (NOT a real PBX).",
            crate::startup::DEMO_PBX_SOURCE
        );
        println!("Play one of the seed's ten calls (scenarios: {pbx}/_control/scenarios):");
        println!(
            "  curl -s {pbx}/_control/play -H 'Content-Type: application/json' \\\n    \
             -d '{{\"scenario\":\"incoming-unknown-answered\",\"to\":\"{base}/telephony/{}/{key}\"}}'",
            crate::startup::DEMO_PBX_SOURCE
        );
        println!("A few seconds later the call, its contact and its deal are in the sandbox CRM's contents.");
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM can be handled");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: intake stops, in-flight deliveries finish or are released");
    shutdown.cancel();
}

/// Checks the file, then every route against its CRM account; prints each problem by key.
async fn check(path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let mut problems = smtp_problems(config.smtp.as_ref()).await;
    if config.destinations.is_empty() && problems.is_empty() {
        println!("configuration OK; no [destinations.*]: `serve` will use the built-in sandbox CRM");
        return Ok(ExitCode::SUCCESS);
    }
    // Renewing an OAuth token rotates it, so the check keeps tokens where `serve` will find them.
    let store = Store::open_existing(&config.store).await?;
    // A destination that cannot be reached or refuses its credentials is named once, not once per source.
    let mut unusable_destinations = std::collections::BTreeSet::new();
    for source in config.sources.values() {
        if unusable_destinations.contains(&source.route.destination) {
            continue;
        }
        let destination = &config.destinations[&source.route.destination];
        let connector = Connector::build(destination, store.clone(), config.phone_region, config.worker.blocked_pause);
        let key = |field: &str| format!("sources.{}.{field}", source.id);
        if let Some(message) = crate::delivery::unsupported_route(source, &connector) {
            problems.push(Problem { key: key("destination"), message });
            continue;
        }
        match connector.check_route(&source.route).await {
            Ok(()) => {}
            Err(RouteProblem::Pipeline(message)) => problems.push(Problem { key: key("pipeline"), message }),
            Err(RouteProblem::Status(message)) => problems.push(Problem { key: key("status"), message }),
            Err(RouteProblem::DealFields(message)) => problems.push(Problem { key: key("deal_fields"), message }),
            Err(RouteProblem::Destination(error)) => {
                let credentials = match destination {
                    DestinationConfig::AmoCrm(_) => "access_token",
                    DestinationConfig::SessionCrm(_) => "password",
                };
                let field = if matches!(error, DeliveryError::Unauthorized(_)) { credentials } else { "base_url" };
                let key = format!("destinations.{}.{field}", source.route.destination);
                problems.push(Problem { key, message: error.to_string() });
                unusable_destinations.insert(source.route.destination.clone());
                continue;
            }
        }
        if let SourceKind::Telephony(telephony) = &source.kind {
            problems.extend(unknown_users(telephony, &connector, &key).await);
        }
    }
    if problems.is_empty() {
        println!(
            "configuration OK: {} destination(s), {} source(s), every route checked against its CRM",
            config.destinations.len(),
            config.sources.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("the configuration has {} problem(s):", problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    Ok(ExitCode::from(2))
}

/// The SMTP server, greeted as the gateway will greet it (TLS and login included), sending nothing.
async fn smtp_problems(smtp: Option<&SmtpConfig>) -> Vec<Problem> {
    let Some(smtp) = smtp else { return Vec::new() };
    let reached = match Mailer::new(smtp) {
        Ok(mailer) => mailer.check_reachable().await,
        Err(error) => Err(error),
    };
    match reached {
        Ok(()) => Vec::new(),
        Err(error) => {
            vec![Problem { key: "smtp.url".to_owned(), message: format!("cannot reach the SMTP server: {error}") }]
        }
    }
}

/// Every user a telephony source names, looked up in its CRM: a name nobody has there would
/// otherwise surface only on the first call of that extension.
async fn unknown_users(
    telephony: &TelephonySource,
    connector: &Connector,
    key: &dyn Fn(&str) -> String,
) -> Vec<Problem> {
    let named = telephony.users.iter().map(|(extension, user)| (format!("users.{extension}"), user));
    let missed = telephony.missed_calls_user.iter().map(|user| ("missed_calls_user".to_owned(), user));
    let mut problems = Vec::new();
    for (field, user) in named.chain(missed) {
        if let Err(error) = connector.crm_user(user, &mut Vec::new()).await {
            problems.push(Problem { key: key(&field), message: error.to_string() });
        }
    }
    problems
}

async fn migrate(path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    Store::open(&config.store).await?;
    println!("the database at {} is up to date", without_password(&config.store.url));
    Ok(ExitCode::SUCCESS)
}

/// A store's address fit to print: any password in it replaced.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

async fn sandbox_crm(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let config = amocrm_emulator::EmulatorConfig::default();
    let token = config.long_lived_token.clone().unwrap_or_default();
    let emulator = amocrm_emulator::spawn(config, listen).await?;
    println!("amoCRM emulator (NOT a real CRM) on {}", emulator.base_url());
    println!("  long-lived token: {token}");
    println!("  state: {}/_emulator/state", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn sandbox_session_crm(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let config = session_crm_emulator::SessionCrmConfig::default();
    let (username, password) = (config.username.clone(), config.password.clone());
    let crm = session_crm_emulator::spawn_on(config, listen).await?;
    let base = crm.base_url();
    println!("session CRM emulator (NOT a real CRM) on {base}");
    println!("  username: {username}");
    println!("  password: {password}");
    println!("  log in:   POST {base}{}", session_crm_emulator::LOGIN_PATH);
    println!("  state:    {base}/_control/state");
    tokio::signal::ctrl_c().await?;
    crm.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn sandbox_pbx(
    provider: SandboxPbxProvider,
    listen: SocketAddr,
    play: Option<(String, url::Url)>,
) -> anyhow::Result<ExitCode> {
    let kind = match provider {
        SandboxPbxProvider::Telphin => pbx_emulator::ProviderKind::Telphin,
        SandboxPbxProvider::Zadarma => pbx_emulator::ProviderKind::Zadarma,
        SandboxPbxProvider::Mango => pbx_emulator::ProviderKind::Mango,
    };
    let names: Vec<&str> = pbx_emulator::Scenario::all().iter().map(|scenario| scenario.name).collect();
    let scenario = match &play {
        Some((name, _)) => match pbx_emulator::Scenario::find(name) {
            Some(scenario) => Some(scenario),
            None => {
                eprintln!("leadgate: unknown scenario {name:?}; known: {}", names.join(", "));
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let pbx = pbx_emulator::spawn_on(pbx_emulator::PbxConfig::sandbox(kind), listen).await?;
    let base = pbx.base_url();
    println!("{kind} PBX emulator (NOT a real PBX) on {base}");
    for (name, value) in pbx.pbx.provider().credential_lines() {
        println!("  {name}: {value}");
    }
    println!("  state:     {base}/_control/state");
    println!("  scenarios: {}", names.join(", "));
    println!("  play one:  curl -s -H 'Content-Type: application/json' {base}/_control/play \\");
    println!("               -d '{{\"scenario\": \"incoming-known-answered\", \"to\": \"<URL of leadgate>\"}}'");
    if let (Some(scenario), Some((_, target))) = (scenario, play) {
        let report = pbx.pbx.play(&scenario.script(), &target, &pbx_emulator::PlayOptions::default()).await?;
        println!("played {} to {}:", report.script, report.target);
        for delivery in &report.deliveries {
            let outcome =
                delivery.status.map_or_else(|| delivery.error.clone().unwrap_or_default(), |status| status.to_string());
            println!("  {:<22} {outcome}", delivery.event);
        }
    }
    tokio::signal::ctrl_c().await?;
    pbx.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option and argument a user can see in some `--help`, by its command path.
    fn undescribed(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                found.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            undescribed(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    #[test]
    fn every_option_and_argument_of_every_command_says_what_it_is() {
        let mut command = Cli::command();
        command.build();
        let mut found = Vec::new();
        undescribed(&command, "leadgate", &mut found);
        assert!(found.is_empty(), "without a description: {found:#?}");
    }

    #[test]
    fn commands_that_read_no_configuration_do_not_offer_config() {
        let mut command = Cli::command();
        command.build();
        for name in ["sandbox-crm", "sandbox-pbx", "store"] {
            let sub = command.find_subcommand(name).unwrap();
            let offered = sub.get_arguments().any(|arg| arg.get_id() == "config" && !arg.is_hide_set());
            assert!(!offered, "{name} --help offers --config");
        }
        let serve = command.find_subcommand("serve").unwrap();
        assert!(serve.get_arguments().any(|arg| arg.get_id() == "config" && !arg.is_hide_set()));
        assert!(serve.get_arguments().any(|arg| arg.get_id() == "listen"));
    }
}

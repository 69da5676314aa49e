//! `leadgate users add|passwd|disable|enable|list`: the console's users, made only here.
//!
//! Passwords are read from the terminal without echo, or as one line of standard input when it
//! is not a terminal (for provisioning scripts); never from arguments, which shell history and
//! `ps` keep.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::domain::operator::{Password, Role, Username};
use crate::store::Store;

/// Who the audit log names for what is done here.
const ACTOR: &str = "command line";

#[derive(Subcommand)]
pub enum UsersAction {
    /// Add a console user; the password is asked for (at least 12 characters).
    Add {
        /// The name the user logs in with.
        username: String,
        /// `admin` (everything) or `viewer` (read-only, no personal data beyond the list).
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Set a new password; the user's sessions end.
    Passwd {
        /// The user's login name.
        username: String,
    },
    /// Stop a user from logging in; their sessions end at once.
    Disable {
        /// The user's login name.
        username: String,
    },
    /// Let a disabled user log in again.
    Enable {
        /// The user's login name.
        username: String,
    },
    /// Every user with their role and state.
    List,
}

pub async fn run(action: UsersAction, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&config.store).await?;
    match action {
        UsersAction::Add { username, role } => {
            let (Some(username), Some(role)) = (parsed(Username::parse(&username)), parsed(Role::parse(&role))) else {
                return Ok(ExitCode::from(2));
            };
            let Some(password) = read_password()? else { return Ok(ExitCode::from(2)) };
            let hash = tokio::task::spawn_blocking(move || password.hash()).await?;
            if store.add_console_user(&username, &hash, role).await?.is_none() {
                eprintln!(
                    "a user named {username} exists already; `leadgate users passwd {username}` changes the password"
                );
                return Ok(ExitCode::from(2));
            }
            store.audit(ACTOR, "user_added", Some(&format!("{username} as {}", role.as_str()))).await?;
            println!("added {username} ({})", role.as_str());
        }
        UsersAction::Passwd { username } => {
            let Some(username) = parsed(Username::parse(&username)) else { return Ok(ExitCode::from(2)) };
            let Some(password) = read_password()? else { return Ok(ExitCode::from(2)) };
            let hash = tokio::task::spawn_blocking(move || password.hash()).await?;
            if !store.set_console_password(&username, &hash).await? {
                return Ok(no_such_user(&username));
            }
            store.audit(ACTOR, "password_changed", Some(username.as_str())).await?;
            println!("the password of {username} is changed; their sessions have ended");
        }
        UsersAction::Disable { username } => return set_disabled(&store, &username, true).await,
        UsersAction::Enable { username } => return set_disabled(&store, &username, false).await,
        UsersAction::List => {
            let users = store.console_users().await?;
            if users.is_empty() {
                println!("no console users; add the first admin with `leadgate users add NAME --role admin`");
            }
            for user in users {
                let state = if user.disabled { "disabled" } else { "enabled" };
                println!("{:<32} {:<7} {state}", user.username, user.role.as_str());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_disabled(store: &Store, username: &str, disabled: bool) -> anyhow::Result<ExitCode> {
    let Some(username) = parsed(Username::parse(username)) else { return Ok(ExitCode::from(2)) };
    if !store.set_console_user_disabled(&username, disabled).await? {
        return Ok(no_such_user(&username));
    }
    let (action, said) =
        if disabled { ("user_disabled", "disabled; their sessions have ended") } else { ("user_enabled", "enabled") };
    store.audit(ACTOR, action, Some(username.as_str())).await?;
    println!("{username} is {said}");
    Ok(ExitCode::SUCCESS)
}

fn parsed<T>(result: Result<T, crate::domain::operator::OperatorError>) -> Option<T> {
    result.map_err(|error| eprintln!("leadgate: {error}")).ok()
}

fn no_such_user(username: &Username) -> ExitCode {
    eprintln!("leadgate: there is no user named {username} (`leadgate users list` shows them)");
    ExitCode::from(2)
}

/// The new password: typed twice without echo on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<Option<Password>> {
    let typed = if std::io::stdin().is_terminal() {
        let first = SecretString::from(rpassword::prompt_password("Password (at least 12 characters): ")?);
        let again = SecretString::from(rpassword::prompt_password("The same password again: ")?);
        if first.expose_secret() != again.expose_secret() {
            eprintln!("leadgate: the two passwords differ; nothing was changed");
            return Ok(None);
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    Ok(parsed(Password::parse(typed)))
}

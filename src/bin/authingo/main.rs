//! `authingo`, the admin command (feature `cli`): what an operator does by hand on a database the
//! crate uses. The commands are in `commands`, how they print in `output`, how they fail (and
//! with which exit code) in `failure`.

mod commands;
mod failure;
mod output;

use std::process::ExitCode;

use authingo::CleanupPace;
use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser, Subcommand};

use self::output::Printer;

/// Exit codes, as `--help` shows them; `failure::Code` holds the numbers.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure: the database refused a statement, a migration failed
  2  usage: an unknown command or option, no database URL, a URL or email that cannot be used
  3  not found: no account with that email, no such session of that user
  4  the database is unavailable: it cannot be reached, refuses the connection, or TLS fails
  5  schema problems found: a table is not as authingo expects (each problem on stdout)

Output goes to stdout, one record per line (tab-separated) or, with --json, one JSON value.
Errors go to stderr, on one line. Neither ever shows a password hash, a token or its digest.";

/// Administers the authingo tables of a PostgreSQL database.
#[derive(Debug, Parser)]
#[command(name = "authingo", version, after_help = EXIT_CODES)]
struct Cli {
    /// The database, as `authingo::postgres::connect` takes it (TLS from `sslmode` and
    /// `sslrootcert`, or PGSSLMODE and PGSSLROOTCERT).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,

    /// Prints one JSON value instead of lines.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Applies the pending migrations.
    ///
    /// The migrations embedded in this build, under an advisory lock (safe to run from several
    /// places at once); the tables are checked afterwards. Prints `applied<TAB>VERSION` for each
    /// migration applied, nothing when the database was up to date.
    Migrate,
    /// Checks that the tables are as authingo expects.
    ///
    /// Prints `schema<TAB>ok`, or a `table<TAB>problem` header and a line for each problem of the
    /// first table that differs (exit code 5).
    VerifySchema,
    /// Accounts.
    #[command(subcommand)]
    Users(Users),
    /// A user's sessions.
    #[command(subcommand)]
    Sessions(Sessions),
    /// Unlocks an email locked by failed sign-ins.
    ///
    /// Clears its count of failed sign-ins, and so its lock (an address without an account
    /// locks too). Prints `had_failures<TAB>true` or `false`.
    Unlock {
        /// The address, as the user types it.
        email: String,
    },
    /// Runs one cleanup sweep.
    ///
    /// Deletes the dead sessions, the expired one-time tokens and the abuse counters whose time
    /// is past, in bounded batches. Prints how many of each went (`sessions`, `tokens`,
    /// `counters`).
    Cleanup {
        /// `default` (batches of 1,000, each followed by a pause 99 times as long: 1% of the
        /// time working), `unthrottled` (no pause), or a pause ratio such as `9`.
        #[arg(long, default_value = "default", value_parser = parse_pace)]
        pace: CleanupPace,
    },
}

#[derive(Debug, Subcommand)]
enum Users {
    /// Prints an account.
    ///
    /// `id`, `email`, `name`, `verified`, `created`, `updated` and `live_sessions`, each on a
    /// line `name<TAB>value` (never the password hash).
    Show {
        /// The address, as the user types it.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum Sessions {
    /// Prints the user's live sessions.
    ///
    /// Most recently used first, under a header line: `id`, `created`, `last_used`, `expires`,
    /// `refresh_expires`, `absolute_expires`, `ip`, `user_agent` (`-` for none; never a token or
    /// its digest).
    List {
        /// The user's email.
        #[arg(long)]
        user: String,
    },
    /// Ends the user's sessions.
    ///
    /// All of them, voiding the links mailed to the user too; or only `--session`. Prints
    /// `revoked<TAB>COUNT`.
    Revoke {
        /// The user's email.
        #[arg(long)]
        user: String,
        /// Only this session (an id from `sessions list`).
        #[arg(long)]
        session: Option<String>,
    },
}

fn parse_pace(text: &str) -> Result<CleanupPace, String> {
    match text {
        "default" => Ok(CleanupPace::default()),
        "unthrottled" => Ok(CleanupPace::UNTHROTTLED),
        ratio => match ratio.parse::<f64>() {
            Ok(pause_ratio) if pause_ratio.is_finite() && pause_ratio >= 0.0 => Ok(CleanupPace {
                pause_ratio,
                ..CleanupPace::default()
            }),
            _ => Err("expected `default`, `unthrottled` or a pause ratio of 0 or more".into()),
        },
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(url) = cli.database_url.as_deref() else {
        Cli::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                "no database URL: set DATABASE_URL or pass --database-url",
            )
            .exit()
    };
    let out = Printer::new(cli.json);
    let done = match cli.command {
        Command::Migrate => commands::migrate(url, &out).await,
        Command::VerifySchema => commands::verify_schema(url, &out).await,
        Command::Users(Users::Show { email }) => commands::show_user(url, &email, &out).await,
        Command::Sessions(Sessions::List { user }) => {
            commands::list_sessions(url, &user, &out).await
        }
        Command::Sessions(Sessions::Revoke { user, session }) => {
            commands::revoke_sessions(url, &user, session.as_deref(), &out).await
        }
        Command::Unlock { email } => commands::unlock(url, &email, &out).await,
        Command::Cleanup { pace } => commands::cleanup(url, pace, &out).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

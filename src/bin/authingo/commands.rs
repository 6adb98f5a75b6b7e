//! The commands: the schema (`migrate`, `verify-schema`) through the setup functions, accounts
//! and sessions through the engine, which normalises addresses as a sign-in does, and the sweep
//! through the store.

use authingo::postgres::{self, PgStore, PoolConfig, SetupError};
use authingo::{
    AbuseCounters as _, Auth, CleanupPace, OneTimeTokens as _, Options, Store as _, User,
};
use serde_json::Value;

use crate::failure::{Code, Failure};
use crate::output::{Printer, time};

/// One command at a time needs few connections.
const POOL_SIZE: u32 = 2;

async fn store(url: &str) -> Result<PgStore, Failure> {
    let pool = postgres::connect_with(url, &PoolConfig::default().max_size(POOL_SIZE)).await?;
    Ok(PgStore::new(pool))
}

/// The engine for an operator's tool: no cleanup loop (`cleanup` is one sweep on demand), one
/// hashing thread (no command hashes a password), and the development mailer accepted in a
/// release build, since no command sends mail.
async fn engine(url: &str) -> Result<Auth, Failure> {
    let options = Options::new(store(url).await?)
        .cleanup_interval(None)
        .max_concurrent_hashes(1)
        .allow_dev_mailer(true);
    Auth::new(options).map_err(|err| Failure::new(Code::Failed, err.to_string()))
}

async fn user(auth: &Auth, email: &str) -> Result<User, Failure> {
    auth.user_by_email(email)
        .await?
        .ok_or_else(|| Failure::new(Code::NotFound, "no account with that email"))
}

pub(crate) async fn migrate(url: &str, out: &Printer) -> Result<(), Failure> {
    let applied = postgres::run_migrations(url)
        .await
        .map_err(|err| schema_failure(err, out))?;
    out.list("applied", applied)
}

pub(crate) async fn verify_schema(url: &str, out: &Printer) -> Result<(), Failure> {
    store(url)
        .await?
        .verify_schema()
        .await
        .map_err(|err| schema_failure(err, out))?;
    out.record(vec![("schema", "ok".into())])
}

/// Prints the problems of an incompatible table (each on a line of its own) before failing with
/// them; any other error as it is.
fn schema_failure(err: SetupError, out: &Printer) -> Failure {
    if let SetupError::IncompatibleSchema { table, problems } = &err {
        let rows = problems
            .iter()
            .map(|problem| vec![(*table).into(), problem.to_string().into()])
            .collect();
        if let Err(failure) = out.table(&["table", "problem"], rows) {
            return failure;
        }
    }
    err.into()
}

pub(crate) async fn show_user(url: &str, email: &str, out: &Printer) -> Result<(), Failure> {
    let auth = engine(url).await?;
    let user = user(&auth, email).await?;
    let live = auth.list_user_sessions(&user.id).await?.len();
    out.record(vec![
        ("id", user.id.into()),
        ("email", user.email.into()),
        ("name", user.name.into()),
        ("verified", user.email_verified.into()),
        ("created", time(user.created_at)),
        ("updated", time(user.updated_at)),
        ("live_sessions", live.into()),
    ])
}

pub(crate) async fn list_sessions(url: &str, email: &str, out: &Printer) -> Result<(), Failure> {
    let auth = engine(url).await?;
    let user = user(&auth, email).await?;
    let rows = auth
        .list_user_sessions(&user.id)
        .await?
        .into_iter()
        .map(|session| {
            vec![
                Value::from(session.id.clone()),
                time(session.created_at),
                time(session.last_used_at()),
                time(session.expires_at.into()),
                time(session.refresh_expires_at.into()),
                time(session.absolute_expires_at),
                Value::from(session.ip_address),
                Value::from(session.user_agent),
            ]
        });
    out.table(
        &[
            "id",
            "created",
            "last_used",
            "expires",
            "refresh_expires",
            "absolute_expires",
            "ip",
            "user_agent",
        ],
        rows.collect(),
    )
}

pub(crate) async fn revoke_sessions(
    url: &str,
    email: &str,
    session: Option<&str>,
    out: &Printer,
) -> Result<(), Failure> {
    let auth = engine(url).await?;
    let user = user(&auth, email).await?;
    let revoked = match session {
        Some(id) if auth.revoke_session(&user, id).await? => 1,
        Some(_) => return Err(Failure::new(Code::NotFound, "no such session of that user")),
        None => auth.revoke_user_sessions(&user.id).await?,
    };
    out.record(vec![("revoked", revoked.into())])
}

pub(crate) async fn unlock(url: &str, email: &str, out: &Printer) -> Result<(), Failure> {
    let had_failures = engine(url).await?.unlock_account(email).await?;
    out.record(vec![("had_failures", had_failures.into())])
}

pub(crate) async fn cleanup(url: &str, pace: CleanupPace, out: &Printer) -> Result<(), Failure> {
    let store = store(url).await?;
    let sessions = store.cleanup_expired_sessions_paced(pace).await?;
    let tokens = store.cleanup_expired_tokens().await?;
    let counters = store.cleanup_rate_limits().await?;
    out.record(vec![
        ("sessions", sessions.into()),
        ("tokens", tokens.into()),
        ("counters", counters.into()),
    ])
}

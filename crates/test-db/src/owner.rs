//! The process's owner session, and the sweep that drops the databases of owners that are gone
//! (the scheme is in the crate docs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OnceCell, oneshot};
use tokio_postgres::{Client, NoTls};

use crate::server::{connect, drop_database, execute, query_names, query_value};
use crate::urls::{redacted, server_of};
use crate::{Error, PREFIX, TEMPLATE_KIND};

/// The owner of this process's databases, set up once; holds names and a flag, never a
/// connection (the session lives on a thread of its own, with its own runtime, since each
/// `#[tokio::test]` runtime ends with its test).
static OWNER: OnceCell<Owner> = OnceCell::const_new();

/// This process's identity on the server: a random id whose advisory lock a session of its own
/// holds for as long as the process lives.
#[derive(Debug)]
pub struct Owner {
    id: u64,
    /// The server URL without a database name, to refuse being asked for another server.
    server: String,
    /// Cleared when the owner session ends.
    alive: Arc<AtomicBool>,
}

impl Owner {
    /// The owner id, as it appears in database names: 16 hex digits.
    pub fn id(&self) -> String {
        format!("{:016x}", self.id)
    }

    /// The name of a database of this process: `authingo_<kind>_<owner>_<label>`.
    ///
    /// # Panics
    /// When `kind` is not a lowercase ASCII word (or is `tpl`, the templates') or `label` is empty: the sweep would not
    /// recognise the name. Both come from code, never from input.
    pub fn database_name(&self, kind: &str, label: &str) -> String {
        assert!(
            is_kind(kind),
            "database kind {kind:?}: a lowercase ASCII word other than {TEMPLATE_KIND:?}"
        );
        assert!(!label.is_empty(), "an empty database label");
        format!("{PREFIX}{kind}_{}_{label}", self.id())
    }
}

/// This process's [`Owner`] on the server at `server_url`, set up on first use: a connection on
/// a thread of its own takes the owner's advisory lock and keeps it until the process ends.
///
/// # Errors
/// [`Error::Connect`] when the server cannot be reached; [`Error::OtherServer`] when the owner
/// was set up on another server; [`Error::OwnerGone`] when its session has ended since.
pub async fn owner(server_url: &str) -> Result<&'static Owner, Error> {
    let owner = OWNER.get_or_try_init(|| start(server_url)).await?;
    let asked = server_of(server_url)?;
    if owner.server != asked {
        return Err(Error::OtherServer {
            owner: redacted(&owner.server),
            asked: redacted(&asked),
        });
    }
    if !owner.alive.load(Ordering::SeqCst) {
        return Err(Error::OwnerGone);
    }
    Ok(owner)
}

/// Drops the `authingo_<kind>_<owner>_<label>` databases on the server at `server_url` whose
/// owner session is gone, and returns their names. Tries every database even when a drop fails,
/// then reports the first failure.
///
/// # Errors
/// [`Error::Connect`] when the server cannot be reached, [`Error::Query`] when a statement fails.
pub async fn sweep_leftovers(server_url: &str) -> Result<Vec<String>, Error> {
    let admin = connect(server_url).await?;
    let own = OWNER.get().map(|owner| owner.id);
    let pattern = format!("{}%", PREFIX.replace('_', "\\_"));
    let mut by_owner: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for name in query_names(
        &admin,
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
        &[&pattern],
    )
    .await?
    {
        if let Some(id) = owner_of(&name).filter(|&id| Some(id) != own) {
            by_owner.entry(id).or_default().push(name);
        }
    }
    let mut dropped = Vec::new();
    let mut first_error = None;
    for (id, names) in by_owner {
        let key = lock_key(id);
        // Granted only if no session holds the key: the owner's session is gone.
        let taken: bool = query_value(&admin, "SELECT pg_try_advisory_lock($1)", &[&key]).await?;
        if !taken {
            continue;
        }
        // Listed again under the lock, since the owner may have dropped some before it ended;
        // now nobody but a sweeper holding the key touches them.
        let names = query_names(
            &admin,
            "SELECT datname::text FROM pg_database WHERE datname = ANY($1)",
            &[&names],
        )
        .await?;
        for name in names {
            match drop_database(&admin, &name).await {
                Ok(()) => dropped.push(name),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        let _: bool = query_value(&admin, "SELECT pg_advisory_unlock($1)", &[&key]).await?;
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(dropped),
    }
}

/// The owner id in `authingo_<kind>_<owner>_<label>`, or `None` for any other name (templates,
/// other tools' databases).
fn owner_of(name: &str) -> Option<u64> {
    let (kind, rest) = name.strip_prefix(PREFIX)?.split_once('_')?;
    let (id, label) = rest.split_once('_')?;
    let is_kind = is_kind(kind);
    let is_id = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_kind || !is_id || label.is_empty() {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

/// Whether `kind` may name owned databases: a lowercase ASCII word other than the templates'.
fn is_kind(kind: &str) -> bool {
    kind != TEMPLATE_KIND && !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase())
}

/// The advisory lock key of owner `id`: the same 64 bits, as PostgreSQL's `bigint`.
fn lock_key(id: u64) -> i64 {
    i64::from_be_bytes(id.to_be_bytes())
}

async fn start(server_url: &str) -> Result<Owner, Error> {
    let server = server_of(server_url)?;
    let url = server_url.to_owned();
    let alive = Arc::new(AtomicBool::new(true));
    let (ready, claimed) = oneshot::channel();
    let ended = Arc::clone(&alive);
    std::thread::Builder::new()
        .name("authingo-test-db-owner".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(hold(url, ready)),
                Err(error) => {
                    let _ = ready.send(Err(Error::Thread { error }));
                }
            }
            ended.store(false, Ordering::SeqCst);
        })
        .map_err(|error| Error::Thread { error })?;
    let id = claimed.await.map_err(|_| Error::OwnerGone)??;
    Ok(Owner { id, server, alive })
}

/// The owner thread's work: connect, claim an id, report it, then keep the session (and with it
/// the lock) until the connection ends.
async fn hold(url: String, ready: oneshot::Sender<Result<u64, Error>>) {
    let (client, connection) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(pair) => pair,
        Err(error) => {
            let _ = ready.send(Err(Error::Connect {
                url: redacted(&url),
                error,
            }));
            return;
        }
    };
    let connection = tokio::spawn(connection);
    let id = match claim(&client).await {
        Ok(id) => id,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(id)).is_err() {
        // The caller gave up (its test was cancelled): dropping the client ends the session
        // and releases the id.
        return;
    }
    if let Ok(Err(err)) = connection.await {
        eprintln!("authingo-test-db: the owner session ended: {err}");
    }
    drop(client);
}

/// Draws ids until one's advisory lock is free, takes it, and keeps the session from timing out.
async fn claim(client: &Client) -> Result<u64, Error> {
    // Only where the setting exists (PostgreSQL 14 and later).
    execute(
        client,
        "SELECT set_config(name, '0', false) FROM pg_settings \
         WHERE name = 'idle_session_timeout'",
    )
    .await?;
    loop {
        let id = rand::random::<u64>();
        let taken: bool =
            query_value(client, "SELECT pg_try_advisory_lock($1)", &[&lock_key(id)]).await?;
        if taken {
            let name = format!("authingo-test-db owner {id:016x}");
            execute(client, &format!("SET application_name = '{name}'")).await?;
            return Ok(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_of_reads_only_owned_names() {
        assert_eq!(
            owner_of("authingo_t_00000000000000ff_12"),
            Some(0xff),
            "a test database"
        );
        assert_eq!(
            owner_of("authingo_bench_fedcba9876543210_seed_copy"),
            Some(0xfedc_ba98_7654_3210)
        );
        for name in [
            "authingo_tpl_0123456789ab",
            "authingo_tpl_0123456789ab_building",
            "authingo_tpl_0123456789abcdef_building",
            "authingo_t_12345_0",
            "authingo_t_00000000000000FF_0",
            "authingo_t_00000000000000ff_",
            "authingo_migcheck_4242_a",
            "authingo__00000000000000ff_0",
            "postgres",
        ] {
            assert_eq!(owner_of(name), None, "{name}");
        }
    }

    #[test]
    fn database_names_round_trip_through_owner_of() {
        let owner = Owner {
            id: 0x8000_0000_0000_0001,
            server: String::new(),
            alive: Arc::new(AtomicBool::new(true)),
        };
        let name = owner.database_name("bench", "seed");
        assert_eq!(name, "authingo_bench_8000000000000001_seed");
        assert_eq!(owner_of(&name), Some(owner.id));
        assert_eq!(lock_key(owner.id), i64::MIN + 1);
    }
}

//! Connections to the server, and creating and dropping databases on it.

use tokio_postgres::{Client, NoTls};

use crate::Error;
use crate::urls::{redacted, server_url};

/// What to do when the server cannot be reached.
const START_HINT: &str = "The tests need a running server. Start the local one with\n  \
                          pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
                          or point DATABASE_URL at a server where the user may create databases.";

/// Opens one connection to `url` (a URL or a `key=value` connection string), driven by a task on
/// the current runtime until the client is dropped.
///
/// # Errors
/// [`Error::Connect`] when the server cannot be reached or refuses the connection.
pub async fn connect(url: &str) -> Result<Client, Error> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|error| Error::Connect {
                url: redacted(url),
                error,
            })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("authingo-test-db: connection error: {err}");
        }
    });
    Ok(client)
}

/// A connection to [`server_url`], for `CREATE DATABASE` and `DROP DATABASE`.
///
/// # Panics
/// When the server cannot be reached, with the command that starts the local one.
pub async fn admin() -> Client {
    match connect(&server_url()).await {
        Ok(client) => client,
        Err(err) => panic!("{err}\n{START_HINT}"),
    }
}

/// Creates the database `name`, empty or as a copy of `template`.
///
/// # Errors
/// [`Error::Query`] when the server refuses (the name is taken, the template is in use, …).
pub async fn create_database(
    admin: &Client,
    name: &str,
    template: Option<&str>,
) -> Result<(), Error> {
    let sql = match template {
        Some(template) => format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quoted(name),
            quoted(template)
        ),
        None => format!("CREATE DATABASE {}", quoted(name)),
    };
    execute(admin, &sql).await
}

/// Drops the database `name` if it exists, ending the connections still on it.
///
/// # Errors
/// [`Error::Query`] when the server refuses.
pub async fn drop_database(admin: &Client, name: &str) -> Result<(), Error> {
    execute(
        admin,
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(name)),
    )
    .await
}

/// Runs `sql` (statements without parameters).
pub(crate) async fn execute(client: &Client, sql: &str) -> Result<(), Error> {
    client
        .batch_execute(sql)
        .await
        .map_err(|error| Error::Query {
            sql: sql.to_owned(),
            error,
        })
}

/// Runs `sql` with `params` and returns the first column of its one row.
pub(crate) async fn query_value<T>(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<T, Error>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let failed = |error| Error::Query {
        sql: sql.to_owned(),
        error,
    };
    client
        .query_one(sql, params)
        .await
        .map_err(failed)?
        .try_get(0)
        .map_err(failed)
}

/// Runs `sql` with `params` and returns the first column of every row, as text.
pub(crate) async fn query_names(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<String>, Error> {
    let failed = |error| Error::Query {
        sql: sql.to_owned(),
        error,
    };
    client
        .query(sql, params)
        .await
        .map_err(failed)?
        .iter()
        .map(|row| row.try_get(0).map_err(failed))
        .collect()
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

//! Creating the application's database, for development and demos.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use percent_encoding::percent_decode_str;
use url::Url;

use super::error::SetupError;

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Text)]
    #[expect(dead_code, reason = "only the row's presence matters")]
    datname: String,
}

/// The database name in a `postgres://…/name?…` URL (percent-decoded, as libpq and
/// tokio-postgres read it), and the same URL pointing at the server's `postgres` maintenance
/// database instead.
fn split_url(url: &str) -> Option<(String, String)> {
    let mut url = Url::parse(url).ok()?;
    let name = percent_decode_str(url.path().strip_prefix('/')?)
        .decode_utf8()
        .ok()?
        .into_owned();
    if name.is_empty() {
        return None;
    }
    url.set_path("/postgres");
    Some((name, url.into()))
}

/// Creates the database named in `database_url` if the server does not have it yet; says
/// whether it did. Meant for development and demos: in production the database is provisioned
/// beforehand.
///
/// # Errors
/// [`SetupError::InvalidUrl`] when the URL names no database or is not a URL (a `key=value`
/// string, or several hosts with ports, `h1:5432,h2:5432`, which URL parsers refuse);
/// [`SetupError::Unavailable`] when the server cannot be reached ([`SetupError::Tls`] for TLS);
/// [`SetupError::Database`] when the user may not create it.
pub async fn create_database_if_missing(database_url: &str) -> Result<bool, SetupError> {
    let (name, maintenance_url) = split_url(database_url)
        .ok_or(SetupError::InvalidUrl("names no database or is not a URL"))?;
    let mut conn = super::pool::establish(&maintenance_url).await?;
    if database_exists(&mut conn, &name).await? {
        return Ok(false);
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match diesel::sql_query(format!("CREATE DATABASE {quoted}"))
        .execute(&mut conn)
        .await
    {
        Ok(_) => Ok(true),
        // Another process made it in the meantime.
        Err(_) if database_exists(&mut conn, &name).await? => Ok(false),
        Err(err) => Err(err.into()),
    }
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> Result<bool, SetupError> {
    diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(name)
        .load::<Exists>(conn)
        .await
        .map(|rows| !rows.is_empty())
        .map_err(SetupError::from)
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn splits_the_database_name_off_the_url() {
        assert_eq!(
            split_url("postgres://u:p@h:5432/app?sslmode=disable"),
            Some((
                "app".to_owned(),
                "postgres://u:p@h:5432/postgres?sslmode=disable".to_owned()
            ))
        );
        assert_eq!(
            split_url("postgresql://u@h/my%20app%2Fv2"),
            Some((
                "my app/v2".to_owned(),
                "postgresql://u@h/postgres".to_owned()
            ))
        );
        assert_eq!(split_url("postgres://h/"), None);
        assert_eq!(split_url("postgres://h"), None);
        assert_eq!(split_url("host=h dbname=app"), None);
    }
}

//! TLS to PostgreSQL: each `sslmode` against private clusters with a CA and a server certificate
//! made by the test (and the shared server's self-signed one), the environment's `PGSSLMODE` and
//! `PGSSLROOTCERT`, and the engine's smoke set over TLS, directly and through PgBouncer.

use authingo::{RequestContext, SignUp};
use std::time::{Duration, Instant};

use authingo::postgres::{self, PgPool, PgStore, PoolConfig, SetupError, TlsError};
use authingo::token::{Token, TokenKind};
use authingo::{Store as _, StoreError};
use authingo_test_db::{Cluster, PgBouncer, PoolMode, TestCa, TlsClients};
use diesel::QueryableByName;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl as _;

use crate::support::{EngineBuilder, PASSWORD, TestDb, migrate};

/// A private cluster serving a certificate for `localhost` and `127.0.0.1` signed by its own
/// CA, with a migrated database.
struct TlsServer {
    ca: TestCa,
    cluster: Cluster,
    database: String,
}

impl TlsServer {
    async fn start(clients: TlsClients) -> Self {
        let ca = TestCa::new("authingo test CA");
        let cluster = Cluster::with_tls(&ca.issue(&["localhost", "127.0.0.1"]), clients).await;
        let database = cluster.migrated_database(migrate).await;
        Self {
            ca,
            cluster,
            database,
        }
    }

    /// The database's URL on `host` with the query `params`.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{}?{params}",
            self.cluster.port(),
            self.database
        )
    }

    /// The URL with a host name the certificate was not made out to, reached at 127.0.0.1.
    fn wrong_name_url(&self, params: &str) -> String {
        self.url("db.authingo.test", &format!("hostaddr=127.0.0.1&{params}"))
    }

    fn ca_file(&self) -> String {
        self.ca.file().display().to_string()
    }
}

#[derive(QueryableByName)]
struct Encrypted {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Whether a connection of `pool` is encrypted, as the server sees it.
async fn encrypted(pool: &PgPool) -> bool {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result::<Encrypted>(&mut *conn)
        .await
        .unwrap()
        .ssl
}

async fn connect(url: &str) -> Result<PgPool, SetupError> {
    postgres::connect_with(url, &PoolConfig::default().max_size(2)).await
}

fn tls_error(result: Result<PgPool, SetupError>) -> TlsError {
    match result {
        Err(SetupError::Tls(err)) => err,
        Err(other) => panic!("not a TLS error: {other}"),
        Ok(_) => panic!("connected"),
    }
}

#[tokio::test]
async fn require_connects_over_tls_without_checking_the_certificate() {
    let server = TlsServer::start(TlsClients::Required).await;
    // A host name the certificate does not name: `require` checks nothing.
    let pool = connect(&server.wrong_name_url("sslmode=require"))
        .await
        .unwrap();
    assert!(encrypted(&pool).await);
}

#[tokio::test]
async fn prefer_the_default_uses_tls_when_the_server_offers_it_and_plain_text_otherwise() {
    let server = TlsServer::start(TlsClients::Optional).await;
    for params in ["", "sslmode=prefer"] {
        let pool = connect(&server.url("127.0.0.1", params)).await.unwrap();
        assert!(encrypted(&pool).await, "{params:?}");
    }
    let plain = Cluster::new().await;
    let database = plain.migrated_database(migrate).await;
    let pool = connect(&format!("{}?sslmode=prefer", plain.url(&database)))
        .await
        .unwrap();
    assert!(!encrypted(&pool).await);
}

/// libpq's `prefer` falls back to plain text when the handshake fails, a certificate refused by
/// the root file included: only `require` and above insist on TLS.
#[tokio::test]
async fn prefer_falls_back_to_plain_text_when_the_root_file_refuses_the_certificate() {
    let server = TlsServer::start(TlsClients::Optional).await;
    let stranger = TestCa::new("another CA");
    let params = format!("sslmode=prefer&sslrootcert={}", stranger.file().display());
    let pool = connect(&server.url("localhost", &params)).await.unwrap();
    assert!(!encrypted(&pool).await);
}

#[tokio::test]
async fn require_connects_to_the_shared_server_and_its_self_signed_certificate() {
    let db = TestDb::new().await;
    let mut url = url::Url::parse(db.url()).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "require");
    let pool = connect(url.as_str()).await.unwrap();
    assert!(encrypted(&pool).await);
}

#[tokio::test]
async fn verify_full_connects_to_the_host_names_the_certificate_names() {
    let server = TlsServer::start(TlsClients::Required).await;
    for host in ["localhost", "127.0.0.1"] {
        let params = format!("sslmode=verify-full&sslrootcert={}", server.ca_file());
        let pool = connect(&server.url(host, &params)).await.unwrap();
        assert!(encrypted(&pool).await, "{host}");
    }
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    let server = TlsServer::start(TlsClients::Required).await;
    let params = format!("sslmode=verify-full&sslrootcert={}", server.ca_file());
    let err = tls_error(connect(&server.wrong_name_url(&params)).await);
    assert!(
        matches!(&err, TlsError::HostNameMismatch { host, .. } if host == "db.authingo.test"),
        "{err:?}"
    );
    let message = SetupError::Tls(err).to_string();
    assert!(
        message.contains("does not match the host name \"db.authingo.test\""),
        "{message}"
    );
}

#[tokio::test]
async fn verify_full_and_verify_ca_refuse_a_certificate_of_another_ca() {
    let server = TlsServer::start(TlsClients::Required).await;
    let stranger = TestCa::new("another CA");
    let root = stranger.file().display().to_string();
    // `require` with a root file checks the CA too, as libpq does.
    for mode in ["verify-full", "verify-ca", "require"] {
        let params = format!("sslmode={mode}&sslrootcert={root}");
        let err = tls_error(connect(&server.url("localhost", &params)).await);
        assert!(
            matches!(err, TlsError::UntrustedCertificate(_)),
            "{mode}: {err:?}"
        );
        let message = SetupError::Tls(err).to_string();
        assert!(message.contains("not trusted"), "{message}");
    }
}

#[tokio::test]
async fn verify_ca_accepts_the_right_ca_under_a_wrong_host_name() {
    let server = TlsServer::start(TlsClients::Required).await;
    let params = format!("sslmode=verify-ca&sslrootcert={}", server.ca_file());
    let pool = connect(&server.wrong_name_url(&params)).await.unwrap();
    assert!(encrypted(&pool).await);
}

#[tokio::test]
async fn disable_gets_the_servers_refusal_where_tls_is_required_and_allow_falls_back_to_tls() {
    let server = TlsServer::start(TlsClients::Required).await;
    let Err(SetupError::Unavailable(err)) =
        connect(&server.url("127.0.0.1", "sslmode=disable")).await
    else {
        panic!("sslmode=disable was let in");
    };
    let message = err.to_string();
    assert!(
        message.contains("no pg_hba.conf entry") && message.contains("no encryption"),
        "{message}"
    );
    // libpq's `allow`: plain text first, TLS once the server refuses it.
    let pool = connect(&server.url("127.0.0.1", "sslmode=allow"))
        .await
        .unwrap();
    assert!(encrypted(&pool).await);
}

#[tokio::test]
async fn require_against_a_server_without_tls_says_so() {
    let plain = Cluster::new().await;
    let database = plain.migrated_database(migrate).await;
    let err = tls_error(connect(&format!("{}?sslmode=require", plain.url(&database))).await);
    assert!(matches!(err, TlsError::NotSupported("require")), "{err:?}");
    assert_eq!(
        SetupError::Tls(err).to_string(),
        "cannot connect to the database over TLS: the server does not support TLS, which \
         sslmode=require requires"
    );
}

#[tokio::test]
async fn an_unreadable_sslrootcert_is_refused_by_name_before_connecting() {
    let server = TlsServer::start(TlsClients::Required).await;
    let err = tls_error(
        connect(&server.url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/rds-ca.pem",
        ))
        .await,
    );
    assert!(
        matches!(&err, TlsError::RootCertificateFile { path, .. } if path.ends_with("rds-ca.pem")),
        "{err:?}"
    );
    // Migrations and single connections read the same settings.
    let url = server.url(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/rds-ca.pem",
    );
    assert!(matches!(
        postgres::run_migrations(&url).await,
        Err(SetupError::Tls(TlsError::RootCertificateFile { .. }))
    ));
    assert!(matches!(
        postgres::establish(&url).await,
        Err(SetupError::Tls(TlsError::RootCertificateFile { .. }))
    ));
}

#[tokio::test]
async fn run_migrations_connects_with_verify_full() {
    let server = TlsServer::start(TlsClients::Required).await;
    let params = format!("sslmode=verify-full&sslrootcert={}", server.ca_file());
    // Already migrated by the harness: nothing left to apply, over a verified connection.
    let applied = postgres::run_migrations(&server.url("localhost", &params))
        .await
        .unwrap();
    assert!(applied.is_empty());
}

/// Environment variables are the process's: the test runs [`environment_child`] in a child
/// process of this binary with `PGSSLMODE` and `PGSSLROOTCERT` set, rather than set them under
/// the other tests' feet.
#[tokio::test]
async fn pgsslmode_and_pgsslrootcert_apply_when_the_url_says_nothing() {
    let server = TlsServer::start(TlsClients::Required).await;
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["tls::environment_child", "--exact", "--ignored"])
        .args(["--test-threads=1", "--nocapture"])
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", server.ca.file())
        .env("AUTHINGO_TLS_RIGHT_URL", server.url("localhost", ""))
        .env("AUTHINGO_TLS_WRONG_URL", server.wrong_name_url(""))
        .env(
            "AUTHINGO_TLS_OVERRIDDEN_URL",
            server.wrong_name_url("sslmode=require"),
        )
        .output()
        .await
        .unwrap();
    let told = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{told}");
    assert!(told.contains("1 passed"), "the child ran no test:\n{told}");
}

/// The body of [`pgsslmode_and_pgsslrootcert_apply_when_the_url_says_nothing`], run by it.
#[tokio::test]
#[ignore = "run by pgsslmode_and_pgsslrootcert_apply_when_the_url_says_nothing in a child process"]
async fn environment_child() {
    let var = |name| std::env::var(name).unwrap();
    // verify-full from PGSSLMODE, the CA from PGSSLROOTCERT.
    let pool = connect(&var("AUTHINGO_TLS_RIGHT_URL")).await.unwrap();
    assert!(encrypted(&pool).await);
    let err = tls_error(connect(&var("AUTHINGO_TLS_WRONG_URL")).await);
    assert!(matches!(err, TlsError::HostNameMismatch { .. }), "{err:?}");
    // The URL's sslmode wins over PGSSLMODE; PGSSLROOTCERT still makes `require` check the CA,
    // which this server's certificate passes.
    let pool = connect(&var("AUTHINGO_TLS_OVERRIDDEN_URL")).await.unwrap();
    assert!(encrypted(&pool).await);
}

/// Sign-up, sign-in, the session, a refresh and sign-out through `PgStore` on `pool`.
async fn smoke_set(pool: PgPool) {
    let auth = EngineBuilder::on(PgStore::new(pool)).build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    let signed_in = auth
        .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    let current = auth
        .get_session(signed_in.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.user.email, "ada@example.com");
    let refreshed = auth
        .refresh(
            signed_in.tokens.refresh_token.expose(),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    assert!(
        auth.sign_out(refreshed.tokens.access_token.expose())
            .await
            .unwrap()
    );
    assert!(
        auth.get_session(refreshed.tokens.access_token.expose())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_smoke_set_passes_over_verify_full() {
    let server = TlsServer::start(TlsClients::Required).await;
    let params = format!("sslmode=verify-full&sslrootcert={}", server.ca_file());
    let pool = connect(&server.url("localhost", &params)).await.unwrap();
    assert!(encrypted(&pool).await);
    smoke_set(pool).await;
}

#[tokio::test]
async fn the_smoke_set_passes_through_pgbouncer_requiring_tls() {
    let ca = TestCa::new("authingo test CA");
    let bouncer =
        PgBouncer::start_with_tls(PoolMode::Session, &ca.issue(&["localhost", "127.0.0.1"])).await;
    let db = TestDb::new().await;
    let through = bouncer.url_for(db.url());
    let Err(SetupError::Unavailable(_)) = connect(&format!("{through}?sslmode=disable")).await
    else {
        panic!("PgBouncer let a plain-text client in");
    };
    let params = format!("sslmode=verify-full&sslrootcert={}", ca.file().display());
    smoke_set(connect(&format!("{through}?{params}")).await.unwrap()).await;
}

/// A statement the store gives up on is cancelled on the server over TLS, as the connection's
/// `sslmode` asks: in plain text, tokio-postgres refuses to send a cancel that was to be
/// encrypted, and the statement would wait on as long as the lock is held.
#[tokio::test]
async fn a_statement_the_store_gives_up_on_is_cancelled_over_tls() {
    let server = TlsServer::start(TlsClients::Required).await;
    let params = format!("sslmode=verify-full&sslrootcert={}", server.ca_file());
    let store = PgStore::new(connect(&server.url("localhost", &params)).await.unwrap())
        .statement_timeout(Duration::from_millis(200));
    let held = server
        .cluster
        .lock_table(&server.database, "sessions", "ACCESS EXCLUSIVE")
        .await;
    let digest = Token::generate(TokenKind::Access).unwrap().digest();
    let err = store.get_session(&digest).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    let admin = server.cluster.client("postgres").await;
    let waiting = || async {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&server.database],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while waiting().await > 0 {
        assert!(
            Instant::now() < deadline,
            "the abandoned statement still waits on the lock: it was never cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.release().await;
}

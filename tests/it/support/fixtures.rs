//! What the tests of every layer share: the password, cheap hashing parameters, records with
//! expiries relative to now, the current session of a sign-in, row counts, and captured logs.

use std::sync::{Arc, Mutex};

use authingo::password::Argon2Params;
use authingo::token::{Token, TokenKind, new_id};
use authingo::{Session, SessionWithUser, SignedIn, User};
use chrono::{Duration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl as _;

use super::TestDb;

/// The password the tests sign up and sign in with.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// Cheap argon2id parameters: the tests are about sessions, not the hash's cost.
pub(crate) const FAST: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// A user with a unique id and `email`.
pub(crate) fn user(email: &str) -> User {
    User {
        id: new_id("usr_").unwrap(),
        email: email.to_owned(),
        name: "Ada".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
            .to_owned(),
        email_verified: false,
        created_at: None,
        updated_at: None,
    }
}

/// What the engine hands a request's handler after a lookup, for the session `signed_in` opened.
pub(crate) fn current(signed_in: &SignedIn) -> SessionWithUser {
    SessionWithUser {
        session: signed_in.session.clone(),
        user: signed_in.user.clone(),
    }
}

/// The raw tokens of a session, as a client would hold them.
pub(crate) struct Tokens {
    pub(crate) access: Token,
    pub(crate) refresh: Token,
}

/// A session of `user` whose access token expires `access_in` from now and refresh token
/// `refresh_in` from now (negative: already expired), with its raw tokens.
pub(crate) fn session(user: &User, access_in: Duration, refresh_in: Duration) -> (Session, Tokens) {
    let tokens = Tokens {
        access: Token::generate(TokenKind::Access).unwrap(),
        refresh: Token::generate(TokenKind::Refresh).unwrap(),
    };
    let now = Utc::now();
    let session = Session {
        id: new_id("ses_").unwrap(),
        user_id: user.id.clone(),
        token: tokens.access.digest(),
        refresh_token: tokens.refresh.digest(),
        expires_at: now + access_in,
        refresh_expires_at: now + refresh_in,
        created_at: None,
        rotated_at: None,
        absolute_expires_at: None,
        persistent: true,
        user_agent: None,
        ip_address: None,
    };
    (session, tokens)
}

/// A live session: access valid 15 minutes, refresh 30 days.
pub(crate) fn live_session(user: &User) -> (Session, Tokens) {
    session(user, Duration::minutes(15), Duration::days(30))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The single `count(*) AS n` that `sql` selects.
pub(crate) async fn count(db: &TestDb, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut db.conn().await)
        .await
        .unwrap()
        .n
}

/// The consecutive failed sign-ins counted for `email` (0 without a row).
pub(crate) async fn sign_in_failures(db: &TestDb, email: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT coalesce((SELECT failures::bigint FROM sign_in_failures \
             WHERE email_digest = '{}'), 0) AS n",
            authingo::limits::EmailDigest::of(email).as_str()
        ),
    )
    .await
}

/// The number of rows in `table`.
pub(crate) async fn rows(db: &TestDb, table: &str) -> i64 {
    count(db, &format!("SELECT count(*) AS n FROM {table}")).await
}

/// Captures the `tracing` events of this thread (and of the tasks of a current-thread runtime
/// running on it) as text, until the guard goes.
pub(crate) fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // `tracing` decides once per call site, for the whole process, whether its events are
    // wanted, asking the subscribers of the thread that first reaches it: a sibling test's
    // thread without one would settle "never" for every thread, this one included. A process-wide
    // subscriber that wants everything (and keeps nothing) keeps that answer "yes".
    static ANCHOR: std::sync::Once = std::sync::Once::new();
    ANCHOR.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buffer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

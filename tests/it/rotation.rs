//! Refresh that two tabs and a lost response survive, reuse detection after the grace window
//! (RFC 9700 §4.14.2), and bounded session lifetimes, on the engine and the real database.
//! Rotation times and expiries are written into the past instead of waiting.

use authingo::RequestContext;
use authingo::SignUp;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use authingo::token::{RotationSecret, Token, TokenKind};
use authingo::{Auth, AuthError, RefreshOutcome, SessionRotation, SignedIn, Store as _};
use chrono::{Duration, TimeDelta, Utc};
use tokio::sync::Barrier;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

use crate::support::{EngineBuilder, PASSWORD, TestDb, count, engine, exec, rows, session, user};

async fn signed_up(auth: &Auth) -> SignedIn {
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap()
}

fn refresh_of(signed_in: &SignedIn) -> String {
    signed_in.tokens.refresh_token.expose().to_owned()
}

async fn execute(db: &TestDb, sql: &str) {
    exec(&mut db.conn().await, sql).await;
}

#[tokio::test]
async fn a_retry_after_a_lost_response_gets_the_pair_the_rotation_issued() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = signed_up(&auth).await;
    let rotated = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    // The response was lost; the client retries with the token it still holds.
    let retried = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(retried.tokens.access_token, rotated.tokens.access_token);
    assert_eq!(retried.tokens.refresh_token, rotated.tokens.refresh_token);
    assert_eq!(
        retried.tokens.refresh_expires_at,
        rotated.tokens.refresh_expires_at
    );
    assert_eq!(retried.tokens.issued_at, rotated.tokens.issued_at);
    // Nothing was written by the retry: the pair is the session's, and it moves on normally.
    let found = auth
        .get_session(rotated.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.id, first.session.id);
    let next = auth
        .refresh(&refresh_of(&rotated), &RequestContext::default())
        .await
        .unwrap();
    assert_ne!(next.tokens.refresh_token, rotated.tokens.refresh_token);
    // Two rotations on, the first token is no longer the one a replay may present: even within
    // the window it is a reuse, and the session is revoked.
    assert!(matches!(
        auth.refresh(&refresh_of(&first), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    assert_eq!(rows(&db, "sessions").await, 0);
}

/// A thief who holds a refresh token rotates it twice, or more, before the owner's client
/// presents it: every token the session ever retired still revokes it, after the window as
/// within it, with one `refresh_token_reused` warning each time.
#[tokio::test(flavor = "current_thread")]
async fn every_token_a_session_retired_revokes_it_however_many_rotations_ago() {
    let (reused, _guard) = Reused::watch();
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    signed_up(&auth).await;
    let mut warnings = 0;
    for rotations in [2, 3, 10] {
        for presented in 0..rotations {
            for after_the_window in [true, false] {
                // The token replaced last, within the window, is a replay: tested elsewhere.
                if presented == rotations - 1 && !after_the_window {
                    continue;
                }
                let signed_in = auth
                    .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
                    .await
                    .and_then(authingo::SignIn::signed_in)
                    .unwrap();
                let mut retired = vec![refresh_of(&signed_in)];
                let mut current = signed_in;
                for _ in 0..rotations {
                    current = auth
                        .refresh(&refresh_of(&current), &RequestContext::default())
                        .await
                        .unwrap();
                    retired.push(refresh_of(&current));
                }
                if after_the_window {
                    execute(
                        &db,
                        "UPDATE sessions SET rotated_at = rotated_at - INTERVAL '11 seconds'",
                    )
                    .await;
                }
                let case = format!("{rotations} rotations, token {presented}, {after_the_window}");
                assert!(
                    matches!(
                        auth.refresh(&retired[presented], &RequestContext::default())
                            .await,
                        Err(AuthError::InvalidSession)
                    ),
                    "{case}"
                );
                warnings += 1;
                assert_eq!(reused.0.lock().unwrap().len(), warnings, "{case}");
                // The session is gone, its current pair with it.
                let gone = format!(
                    "SELECT count(*) AS n FROM sessions WHERE id = '{}'",
                    current.session.id
                );
                assert_eq!(count(&db, &gone).await, 0, "{case}");
                assert!(
                    auth.get_session(current.tokens.access_token.expose())
                        .await
                        .unwrap()
                        .is_none(),
                    "{case}"
                );
                assert!(
                    auth.refresh(&refresh_of(&current), &RequestContext::default())
                        .await
                        .is_err(),
                    "{case}"
                );
            }
        }
    }
    assert_eq!(warnings, 2 + 3 + 10 + 1 + 2 + 9);
}

/// An event's fields, as (name, value) pairs.
type Fields = Vec<(String, String)>;

/// Collects the events whose message is `refresh_token_reused`, with their fields.
#[derive(Clone, Default)]
struct Reused(Arc<Mutex<Vec<Fields>>>);

impl Reused {
    /// Collects this thread's warnings (and those of a current-thread runtime's tasks on it)
    /// until the guard goes.
    fn watch() -> (Self, tracing::subscriber::DefaultGuard) {
        let reused = Self::default();
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(reused.clone()));
        (reused, guard)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Reused {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Collect(Fields);
        impl Visit for Collect {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.push((field.name().to_owned(), format!("{value:?}")));
            }
        }
        let mut fields = Collect(Vec::new());
        event.record(&mut fields);
        let reused = fields
            .0
            .iter()
            .any(|(name, value)| name == "message" && value == "refresh_token_reused");
        if reused && *event.metadata().level() == tracing::Level::WARN {
            self.0.lock().unwrap().push(fields.0);
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_replaced_token_after_the_window_revokes_the_session_and_is_logged() {
    let (reused, _guard) = Reused::watch();
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = signed_up(&auth).await;
    let rotated = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    // Eleven seconds later: past the default 10 s window.
    execute(
        &db,
        "UPDATE sessions SET rotated_at = rotated_at - INTERVAL '11 seconds'",
    )
    .await;

    assert!(matches!(
        auth.refresh(&refresh_of(&first), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    // Both tokens of the current pair stopped at once.
    assert!(
        auth.get_session(rotated.tokens.access_token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        auth.refresh(&refresh_of(&rotated), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    assert_eq!(rows(&db, "sessions").await, 0);

    let events = reused.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let fields = &events[0];
    let field = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(field("session.id"), Some(first.session.id.clone()));
    assert_eq!(field("user.id"), Some(first.user.id.clone()));
    let text = format!("{fields:?}");
    for token in [&first.tokens.refresh_token, &rotated.tokens.refresh_token] {
        assert!(!text.contains(token.expose()));
        assert!(!text.contains(token.digest().as_str()));
    }

    // An unknown token stays a plain refusal: nothing revoked, nothing logged.
    let other = auth
        .sign_up(
            "bob@example.com",
            PASSWORD,
            "Bob",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let unknown = Token::generate(TokenKind::Refresh).unwrap();
    assert!(matches!(
        auth.refresh(unknown.expose(), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    assert!(
        auth.refresh(&refresh_of(&other), &RequestContext::default())
            .await
            .is_ok()
    );
    assert_eq!(reused.0.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshes_all_get_the_same_pair_and_the_row_keeps_it() {
    let db = TestDb::new().await;
    let auth = Arc::new(
        EngineBuilder::on(
            db.store_with(authingo::postgres::PoolConfig::default().max_size(20))
                .await,
        )
        .build(),
    );
    let first = signed_up(&auth).await;
    let outcomes = refresh_together(&auth, &refresh_of(&first), 50).await;
    let pairs: Vec<_> = outcomes
        .into_iter()
        .map(|outcome| {
            let signed_in = outcome.unwrap();
            (
                signed_in.tokens.access_token,
                signed_in.tokens.refresh_token,
            )
        })
        .collect();
    assert!(pairs.iter().all(|pair| pair == &pairs[0]));
    assert_one_current_pair(&db, &auth, &pairs[0].0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_grace_off_exactly_one_of_fifty_concurrent_refreshes_wins() {
    let db = TestDb::new().await;
    let store = db
        .store_with(authingo::postgres::PoolConfig::default().max_size(20))
        .await;
    let auth = Arc::new(
        EngineBuilder::on(store)
            .with(|o| o.refresh_reuse_grace(StdDuration::ZERO))
            .build(),
    );
    let first = signed_up(&auth).await;
    let outcomes = refresh_together(&auth, &refresh_of(&first), 50).await;
    let mut winners = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(signed_in) => winners.push(signed_in.tokens.access_token),
            Err(AuthError::InvalidSession) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_one_current_pair(&db, &auth, &winners[0]).await;
}

async fn refresh_together(
    auth: &Arc<Auth>,
    token: &str,
    callers: usize,
) -> Vec<Result<SignedIn, AuthError>> {
    let barrier = Arc::new(Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (auth, barrier, token) = (auth.clone(), barrier.clone(), token.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                auth.refresh(&token, &RequestContext::default()).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

/// One session row, whose current access token is `access`.
async fn assert_one_current_pair(db: &TestDb, auth: &Auth, access: &Token) {
    assert_eq!(rows(db, "sessions").await, 1);
    assert!(auth.get_session(access.expose()).await.unwrap().is_some());
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT count(*) AS n FROM sessions WHERE token = '{}'",
                access.digest().as_str()
            )
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_racing_a_sign_out_never_resurrects_the_session() {
    let db = TestDb::new().await;
    let auth = Arc::new(engine(&db).await);
    for round in 0..20 {
        let signed_in = auth
            .sign_up(
                &format!("ada{round}@example.com"),
                PASSWORD,
                "Ada",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let refresh = tokio::spawn({
            let (auth, barrier, token) = (auth.clone(), barrier.clone(), refresh_of(&signed_in));
            async move {
                barrier.wait().await;
                auth.refresh(&token, &RequestContext::default()).await
            }
        });
        // The other tab signs out with the cookies it holds: the old pair.
        let sign_out = tokio::spawn({
            let (auth, barrier) = (auth.clone(), barrier.clone());
            let (access, refresh) = (
                signed_in.tokens.access_token.expose().to_owned(),
                refresh_of(&signed_in),
            );
            async move {
                barrier.wait().await;
                let ended = auth.sign_out(&access).await.unwrap();
                ended || auth.sign_out(&refresh).await.unwrap()
            }
        });
        let refreshed = refresh.await.unwrap();
        assert!(
            sign_out.await.unwrap(),
            "round {round}: the sign-out found the session"
        );
        if let Ok(refreshed) = refreshed {
            assert!(
                auth.get_session(refreshed.tokens.access_token.expose())
                    .await
                    .unwrap()
                    .is_none(),
                "round {round}: the refreshed pair outlived the sign-out"
            );
        }
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT count(*) AS n FROM sessions WHERE id = '{}'",
                    signed_in.session.id
                )
            )
            .await,
            0,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn no_refresh_extends_a_session_past_its_absolute_lifetime() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = signed_up(&auth).await;
    let created = first.session.created_at.unwrap();
    assert_eq!(
        first.session.absolute_expires_at,
        Some(created + Duration::days(30)),
        "30 days from sign-in by default"
    );
    // Signed in 29 days and 23 hours ago: a refresh gets an hour at most, whatever the TTLs.
    execute(
        &db,
        "UPDATE sessions SET absolute_expires_at = NOW() + INTERVAL '1 hour',
                             created_at = created_at - INTERVAL '29 days 23 hours'",
    )
    .await;
    let rotated = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    let cap = rotated.session.absolute_expires_at.unwrap();
    assert!(cap < Utc::now() + Duration::minutes(61));
    assert_eq!(rotated.tokens.refresh_expires_at, cap);
    assert!(rotated.tokens.access_expires_at <= cap);
    // Past it, the refresh token is refused although its own expiry is not reached.
    execute(
        &db,
        "UPDATE sessions SET absolute_expires_at = NOW() - INTERVAL '1 second',
                             refresh_expires_at = NOW() + INTERVAL '1 day'",
    )
    .await;
    assert!(matches!(
        auth.refresh(&refresh_of(&rotated), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
}

#[tokio::test]
async fn without_a_lifetime_bound_a_session_slides_as_upstream() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .with(|o| o.max_session_lifetime(None))
        .build();
    let first = signed_up(&auth).await;
    assert_eq!(first.session.absolute_expires_at, None);
    execute(
        &db,
        "UPDATE sessions SET created_at = created_at - INTERVAL '400 days'",
    )
    .await;
    let rotated = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(rotated.session.absolute_expires_at, None);
    assert!(rotated.tokens.refresh_expires_at > Utc::now() + Duration::days(29));
}

#[tokio::test]
async fn a_session_without_remember_me_lives_a_day_and_stays_so_through_refreshes() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    signed_up(&auth).await;
    let short = auth
        .sign_in(
            "ada@example.com",
            PASSWORD,
            &RequestContext::default().remember_me(false),
        )
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    let created = short.session.created_at.unwrap();
    assert!(!short.session.persistent && !short.tokens.persistent);
    assert_eq!(
        short.session.absolute_expires_at,
        Some(created + Duration::days(1))
    );
    assert_eq!(short.tokens.refresh_expires_at, created + Duration::days(1));
    let rotated = auth
        .refresh(&refresh_of(&short), &RequestContext::default())
        .await
        .unwrap();
    assert!(!rotated.session.persistent && !rotated.tokens.persistent);
    assert!(rotated.tokens.refresh_expires_at <= created + Duration::days(1));
}

/// A session adopted from the Go library has no absolute expiry: its lifetime counts from its
/// `created_at`.
#[tokio::test]
async fn an_adopted_session_counts_its_lifetime_from_created_at() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    for (age_days, refreshable) in [(29, true), (31, false)] {
        let (mut adopted, tokens) = session(&ada, Duration::minutes(-1), Duration::days(30));
        adopted.created_at = Some(Utc::now() - Duration::days(age_days));
        adopted.absolute_expires_at = None;
        store.create_session(&adopted).await.unwrap();
        let now = Utc::now();
        let rotation = SessionRotation {
            token: Token::generate(TokenKind::Access).unwrap().digest(),
            refresh_token: Token::generate(TokenKind::Refresh).unwrap().digest(),
            expires_at: now + Duration::minutes(15),
            refresh_expires_at: now + Duration::days(30),
            secret: RotationSecret::generate().unwrap(),
            max_lifetime: Some(TimeDelta::days(30)),
            reuse_grace: TimeDelta::seconds(10),
            family: tokens.refresh.family(),
        };
        let outcome = store
            .refresh_session(&tokens.refresh.digest(), &rotation)
            .await
            .unwrap();
        match outcome {
            RefreshOutcome::Rotated(found) if refreshable => {
                let cap = adopted.created_at.unwrap() + Duration::days(30);
                let cap_micros = cap.timestamp_micros();
                assert_eq!(
                    found
                        .session
                        .absolute_expires_at
                        .map(|at| at.timestamp_micros()),
                    Some(cap_micros)
                );
                assert_eq!(
                    found.session.refresh_expires_at.timestamp_micros(),
                    cap_micros
                );
            }
            RefreshOutcome::Invalid if !refreshable => {}
            other => panic!("{age_days} days old: {other:?}"),
        }
    }
}

/// Whoever holds one of a session's refresh tokens knows its family: a token of that family the
/// session never issued is a reuse too. A token of no session's family is a plain refusal.
#[tokio::test(flavor = "current_thread")]
async fn a_token_of_the_familys_prefix_that_was_never_issued_revokes_the_session() {
    let (reused, _guard) = Reused::watch();
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = signed_up(&auth).await;
    let rotated = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    let stranger = Token::generate(TokenKind::Refresh).unwrap();
    assert!(
        auth.refresh(stranger.expose(), &RequestContext::default())
            .await
            .is_err()
    );
    assert!(reused.0.lock().unwrap().is_empty());
    assert_eq!(rows(&db, "sessions").await, 1);

    // The family is the first 16 bytes: 21 characters, and 2 bits of the 22nd, of the text.
    let forged = format!(
        "{}{}",
        &refresh_of(&rotated)[..22],
        &stranger.expose()[22..]
    );
    assert_eq!(
        Token::parse(&forged, TokenKind::Refresh).unwrap().family(),
        first.tokens.refresh_token.family()
    );
    assert!(matches!(
        auth.refresh(&forged, &RequestContext::default()).await,
        Err(AuthError::InvalidSession)
    ));
    assert_eq!(reused.0.lock().unwrap().len(), 1);
    assert_eq!(rows(&db, "sessions").await, 0);
}

/// With the window off there is no replay: the loser of a race, presenting the token replaced
/// last, is refused and nothing ends, as upstream. An older token is still a reuse.
#[tokio::test(flavor = "current_thread")]
async fn with_the_grace_off_an_older_token_still_revokes_but_the_last_one_is_only_refused() {
    let (reused, _guard) = Reused::watch();
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .with(|o| o.refresh_reuse_grace(StdDuration::ZERO))
        .build();
    let first = signed_up(&auth).await;
    let second = auth
        .refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    let third = auth
        .refresh(&refresh_of(&second), &RequestContext::default())
        .await
        .unwrap();
    assert!(matches!(
        auth.refresh(&refresh_of(&second), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    assert!(reused.0.lock().unwrap().is_empty());
    assert!(
        auth.get_session(third.tokens.access_token.expose())
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        auth.refresh(&refresh_of(&first), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    assert_eq!(reused.0.lock().unwrap().len(), 1);
    assert_eq!(rows(&db, "sessions").await, 0);
}

/// The stored secret of the session `id`'s last rotation, if it is still kept.
async fn rotation_secret(db: &TestDb, id: &str) -> Option<String> {
    #[derive(diesel::QueryableByName)]
    struct Secret {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        rotation_secret: Option<String>,
    }
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query("SELECT rotation_secret FROM sessions WHERE id = $1")
        .bind::<diesel::sql_types::Text, _>(id)
        .get_result::<Secret>(&mut db.conn().await)
        .await
        .unwrap()
        .rotation_secret
}

/// What a database read and an old leaked refresh token give: within the window, the secret
/// re-derives the session's current pair (the replay needs it); after it, the secret is gone.
/// A rotation whose window is still open keeps its own.
#[tokio::test]
async fn a_rotation_secret_is_forgotten_once_its_window_has_passed() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let leaked = signed_up(&auth).await;
    let rotated = auth
        .refresh(&refresh_of(&leaked), &RequestContext::default())
        .await
        .unwrap();
    let other = auth
        .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    auth.refresh(&refresh_of(&other), &RequestContext::default())
        .await
        .unwrap();

    let stored = rotation_secret(&db, &leaked.session.id).await.unwrap();
    let secret = RotationSecret::from_stored(&stored).unwrap();
    let derived = Token::derive(TokenKind::Refresh, &secret, &leaked.tokens.refresh_token);
    assert_eq!(
        derived, rotated.tokens.refresh_token,
        "the attack works in the window"
    );

    execute(
        &db,
        &format!(
            "UPDATE sessions SET rotated_at = rotated_at - INTERVAL '11 seconds' WHERE id = '{}'",
            leaked.session.id
        ),
    )
    .await;
    let store = db.store().await;
    assert_eq!(
        store
            .clear_rotation_secrets(TimeDelta::seconds(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(rotation_secret(&db, &leaked.session.id).await, None);
    assert!(rotation_secret(&db, &other.session.id).await.is_some());
    assert_eq!(
        store
            .clear_rotation_secrets(TimeDelta::seconds(10))
            .await
            .unwrap(),
        0
    );
    // The session lives on: its current pair works, and its next rotation keeps a new secret.
    let next = auth
        .refresh(&refresh_of(&rotated), &RequestContext::default())
        .await
        .unwrap();
    assert!(rotation_secret(&db, &next.session.id).await.is_some());
    // The leaked token is still recognised as the session's: presenting it revokes the session.
    assert!(
        auth.refresh(&refresh_of(&leaked), &RequestContext::default())
            .await
            .is_err()
    );
    assert!(
        auth.get_session(next.tokens.access_token.expose())
            .await
            .unwrap()
            .is_none()
    );
}

/// The cleanup loop forgets spent secrets every grace window, without the daily sweep. The
/// test waits for the loop's statements to finish (seen through Diesel's instrumentation), not
/// for time to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_loop_forgets_spent_rotation_secrets_every_grace_window() {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
    use diesel_async::{AsyncConnection as _, AsyncPgConnection};

    struct Cleared(Arc<tokio::sync::watch::Sender<usize>>);
    impl Instrumentation for Cleared {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::FinishQuery { query, .. } = event
                && query.to_string().contains("SET rotation_secret = NULL")
            {
                self.0.send_modify(|runs| *runs += 1);
            }
        }
    }

    let db = TestDb::new().await;
    let (runs, mut finished) = tokio::sync::watch::channel(0);
    let runs = Arc::new(runs);
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| {
        let runs = runs.clone();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.set_instrumentation(Cleared(runs));
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(db.url(), config);
    let pool = bb8::Pool::builder().build(manager).await.unwrap();
    let auth = EngineBuilder::on(authingo::postgres::PgStore::new(pool))
        .with(|o| {
            o.cleanup_interval(Some(StdDuration::from_secs(24 * 60 * 60)))
                .cleanup_first_delay(StdDuration::from_secs(24 * 60 * 60))
                .refresh_reuse_grace(StdDuration::from_secs(1))
        })
        .build();
    let first = signed_up(&auth).await;
    auth.refresh(&refresh_of(&first), &RequestContext::default())
        .await
        .unwrap();
    execute(
        &db,
        "UPDATE sessions SET rotated_at = rotated_at - INTERVAL '1 minute'",
    )
    .await;
    // A run that started after the UPDATE has finished once two more have.
    let seen = *finished.borrow_and_update();
    tokio::time::timeout(
        StdDuration::from_secs(30),
        finished.wait_for(|runs| *runs >= seen + 2),
    )
    .await
    .expect("the loop sweeps the secrets every second")
    .unwrap();
    assert_eq!(rotation_secret(&db, &first.session.id).await, None);
    auth.shutdown().await;
}

//! An existing Diesel + diesel-async + axum application that adopted authingo as the README's
//! "Using authingo in an existing Diesel application" says:
//!
//! - authingo's migrations copied into its own `migrations/` (by the binary
//!   `copy-authingo-migrations`), before its own `posts`, which references `users(id)`;
//! - its `diesel.toml` printing only its own tables into [`schema`];
//! - one pool, built with authingo's recommended settings, for its queries and the store;
//! - its own state type, from which the extractors take [`Auth`];
//! - a protected route that joins `posts` with authingo's `users`.

/// The application's own tables, as `diesel print-schema` writes them with its `diesel.toml`.
#[expect(missing_docs, reason = "written by `diesel print-schema`")]
pub mod schema;

use std::error::Error;

use authingo::http::CurrentUser;
use authingo::postgres::schema::users;
use authingo::postgres::{self, PgPool, PgStore};
use authingo::{Auth, Options};
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use diesel::{ExpressionMethods as _, QueryDsl as _, Queryable};
use diesel_async::RunQueryDsl as _;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use serde::{Deserialize, Serialize};

use schema::posts;

/// The application's migrations: authingo's copies and its own, in version order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

// `posts.user_id` references authingo's `users`; print-schema leaves that out with the filter.
diesel::joinable!(posts -> users (user_id));
authingo::allow_tables_to_appear_with_authingo!(posts);

/// The application's state: authingo's engine, and the pool it shares with the store.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine, for authingo's routes and extractors.
    pub auth: Auth,
    /// The pool, for the application's own queries.
    pub pool: PgPool,
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

/// Connects to the migrated database at `database_url`: one pool with authingo's recommended
/// settings, for the application's queries and the store, whose tables are checked here.
///
/// # Errors
/// When the database cannot be reached or its tables are not as authingo expects.
pub async fn state(database_url: &str) -> Result<AppState, Box<dyn Error>> {
    let pool: PgPool = postgres::pool_builder()
        .max_size(10)
        .build(postgres::manager(database_url))
        .await?
        .into();
    let store = PgStore::new(pool.clone());
    store.verify_schema().await?;
    let auth = Auth::new(Options::new(store))?;
    Ok(AppState { auth, pool })
}

/// The routes: authingo's under `/api/auth`, the application's `/api/posts`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/posts", get(list_posts).post(create_post))
        .nest("/api/auth", state.auth.router())
        .with_state(state)
}

/// A post with its author's name, as `GET /api/posts` lists it.
#[derive(Debug, Serialize, Queryable)]
pub struct PostWithAuthor {
    /// The post's id.
    pub id: i32,
    /// Its title.
    pub title: String,
    /// The name of the user who wrote it.
    pub author: String,
}

/// `GET /api/posts`, for signed-in users: every post with its author, `posts` joined with
/// authingo's `users`.
async fn list_posts(
    _signed_in: CurrentUser,
    State(pool): State<PgPool>,
) -> Result<Json<Vec<PostWithAuthor>>, StatusCode> {
    let mut conn = pool
        .get()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    posts::table
        .inner_join(users::table)
        .select((posts::id, posts::title, users::name))
        .order(posts::id)
        .load::<PostWithAuthor>(&mut conn)
        .await
        .map(Json)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

/// The body of `POST /api/posts`.
#[derive(Debug, Deserialize)]
struct NewPost {
    title: String,
}

/// `POST /api/posts`, for signed-in users: a post by the user; answers its id.
async fn create_post(
    current: CurrentUser,
    State(pool): State<PgPool>,
    Json(post): Json<NewPost>,
) -> Result<(StatusCode, Json<i32>), StatusCode> {
    let mut conn = pool
        .get()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    diesel::insert_into(posts::table)
        .values((
            posts::user_id.eq(&current.user.id),
            posts::title.eq(&post.title),
        ))
        .returning(posts::id)
        .get_result(&mut conn)
        .await
        .map(|id| (StatusCode::CREATED, Json(id)))
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

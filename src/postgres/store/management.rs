//! [`SessionManagement`] on PostgreSQL: a user's sessions as a set, and the change of password
//! that ends them.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Varchar};
use diesel_async::{AsyncConnection, RunQueryDsl};
use tracing::instrument;

use super::{PgStore, Retry, delete_sessions_of, delete_tokens_of, lock_user, storable};
use crate::model::{EndSessions, Session};
use crate::postgres::error::check_text;
use crate::postgres::models::SessionRow;
use crate::postgres::observe;
use crate::postgres::prepared::Prepared;
use crate::postgres::schema::{sessions, users};
use crate::store::{SessionManagement, StoreError};
use crate::telemetry::STORE_SPAN;

#[async_trait]
impl SessionManagement for PgStore {
    #[instrument(name = STORE_SPAN, skip_all, fields(op = "list_sessions"))]
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let _timed = observe::timed("list_sessions");
        if !storable(user_id) {
            return Ok(Vec::new());
        }
        let rows = run!(self, Retry::Idempotent, |conn| async move {
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::refresh_expires_at.gt(diesel::dsl::now))
                .filter(
                    sessions::absolute_expires_at
                        .is_null()
                        .or(sessions::absolute_expires_at.gt(diesel::dsl::now)),
                )
                .order((
                    diesel::dsl::sql::<Nullable<Timestamptz>>(
                        "COALESCE(sessions.rotated_at, sessions.created_at)",
                    )
                    .desc()
                    .nulls_last(),
                    sessions::id,
                ))
                .select(SessionRow::as_select())
                .load(conn)
                .await
        })?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "delete_user_session"))]
    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("delete_user_session");
        if !storable(user_id) || !storable(session_id) {
            return Ok(false);
        }
        let deleted = run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                let deleted = diesel::delete(
                    sessions::table
                        .filter(sessions::id.eq(session_id))
                        .filter(sessions::user_id.eq(user_id)),
                )
                .execute(conn)
                .await?;
                // A revoked session may be a phisher's that asked for trust: the user's trusted
                // browsers end with it.
                if deleted > 0 {
                    super::second_factors::delete_trusted_devices_of(conn, user_id).await?;
                }
                Ok::<_, diesel::result::Error>(deleted)
            })
            .await
        })?;
        Ok(deleted > 0)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "delete_user_sessions"))]
    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let _timed = observe::timed("delete_user_sessions");
        if !storable(user_id) {
            return Ok(0);
        }
        let deleted = run!(self, Retry::Never, |conn| async move {
            match keep {
                Some(_) => delete_sessions_of(conn, user_id, keep).await,
                // Every session ends: the links mailed before end with them.
                None => {
                    conn.transaction(async |conn| {
                        lock_user(conn, user_id).await?;
                        let deleted = delete_sessions_of(conn, user_id, None).await?;
                        delete_tokens_of(conn, user_id).await?;
                        Ok(deleted)
                    })
                    .await
                }
            }
        })?;
        Ok(deleted as u64)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "evict_sessions"))]
    async fn evict_sessions(&self, user_id: &str, keep: u32) -> Result<u64, StoreError> {
        let _timed = observe::timed("evict_sessions");
        if !storable(user_id) {
            return Ok(0);
        }
        let keep = i64::from(keep);
        // Oldest use first out: everything past the `keep` most recently used.
        let deleted = run!(self, Retry::Never, |conn| async move {
            Prepared(
                diesel::sql_query(include_str!("../evict_sessions.sql"))
                    .bind::<Varchar, _>(user_id)
                    .bind::<BigInt, _>(keep),
            )
            .execute(conn)
            .await
        })?;
        Ok(deleted as u64)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "set_password_hash"))]
    async fn set_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
        end: EndSessions<'_>,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("set_password_hash");
        check_text("password_hash", password_hash)?;
        if !storable(user_id) || !storable(expected) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                // Only over the hash that was verified: a reset committed meanwhile stands.
                let updated = diesel::update(
                    users::table
                        .filter(users::id.eq(user_id))
                        .filter(users::password_hash.eq(expected)),
                )
                .set((
                    users::password_hash.eq(password_hash),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
                if updated == 0 {
                    return Ok(false);
                }
                match end {
                    EndSessions::None => {}
                    EndSessions::AllBut(keep) => {
                        delete_sessions_of(conn, user_id, Some(keep)).await?;
                    }
                    EndSessions::All => {
                        delete_sessions_of(conn, user_id, None).await?;
                    }
                }
                delete_tokens_of(conn, user_id).await?;
                Ok(true)
            })
            .await
        })
    }
}

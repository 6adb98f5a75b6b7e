//! [`OneTimeTokens`] on PostgreSQL: links issued under the user's lock, consumed by the
//! statement that reads them.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tracing::instrument;

use super::{
    BATCH_SIZE, PgStore, Retry, delete_sessions_of, delete_tokens_of, lock_user, storable,
};
use crate::model::{OneTimeToken, TokenPurpose, TokenUse, UsedToken};
use crate::postgres::error::check_text;
use crate::postgres::models::UserRecord;
use crate::postgres::observe;
use crate::postgres::prepared::Prepared;
use crate::postgres::schema::{one_time_tokens, sessions, users};
use crate::store::{OneTimeTokens, StoreError};
use crate::telemetry::STORE_SPAN;
use crate::token::TokenDigest;

/// Consumes the token (one `DELETE … RETURNING`, after its user's lock) and applies `use_`;
/// `None`, and the transaction rolled back, when there is nothing to apply it to.
async fn use_token_in(
    conn: &mut AsyncPgConnection,
    digest: &str,
    purpose: &str,
    use_: TokenUse<'_>,
) -> QueryResult<Option<UsedToken>> {
    let live = one_time_tokens::table
        .filter(one_time_tokens::token.eq(digest))
        .filter(one_time_tokens::purpose.eq(purpose))
        .filter(one_time_tokens::expires_at.gt(diesel::dsl::now));
    // Whose it is, to lock the user first; the DELETE below still decides who consumes it.
    let Some(owner) = live
        .select(one_time_tokens::user_id)
        .first::<String>(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let Some(before) = users::table
        .find(&owner)
        .select(UserRecord::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let consumed: Option<(String, Option<String>)> = diesel::delete(live)
        .returning((one_time_tokens::user_id, one_time_tokens::email))
        .get_result(conn)
        .await
        .optional()?;
    let Some((user_id, email)) = consumed else {
        return Ok(None);
    };
    let previous_email = before.email.clone();
    // Links mailed to an address work only while it is the user's.
    let for_current_address = email.as_deref() == Some(previous_email.as_str());
    let target = users::table.filter(users::id.eq(&user_id));
    let updated = match use_ {
        TokenUse::VerifyEmail => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::update(target)
                .set((
                    users::email_verified.eq(true),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(UserRecord::as_returning())
                .get_result(conn)
                .await?
        }
        TokenUse::ResetPassword { password_hash } => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            // The link reached the address: it is verified too.
            let user = diesel::update(target)
                .set((
                    users::password_hash.eq(password_hash),
                    users::email_verified.eq(true),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(UserRecord::as_returning())
                .get_result(conn)
                .await?;
            delete_sessions_of(conn, &user_id, None).await?;
            delete_tokens_of(conn, &user_id).await?;
            user
        }
        TokenUse::ChangeEmail => {
            let Some(new_email) = email else {
                return Err(diesel::result::Error::RollbackTransaction);
            };
            let user = diesel::update(target)
                .set((
                    users::email.eq(new_email),
                    users::email_verified.eq(true),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(UserRecord::as_returning())
                .get_result(conn)
                .await?;
            delete_tokens_of(conn, &user_id).await?;
            user
        }
        TokenUse::RemoveTwoFactor => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            super::second_factors::delete_second_factor_of(conn, &user_id).await?;
            delete_sessions_of(conn, &user_id, None).await?;
            delete_tokens_of(conn, &user_id).await?;
            before
        }
        TokenUse::CancelEmailChange => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::delete(
                one_time_tokens::table
                    .filter(one_time_tokens::user_id.eq(&user_id))
                    .filter(one_time_tokens::purpose.eq_any([
                        TokenPurpose::ChangeEmail.as_str(),
                        TokenPurpose::CancelEmailChange.as_str(),
                    ])),
            )
            .execute(conn)
            .await?;
            before
        }
    };
    Ok(Some(UsedToken {
        user: updated.into(),
        previous_email,
    }))
}

/// Stores `token`, voiding the user's earlier tokens of its purpose; in a transaction that holds
/// the user's lock.
async fn insert_token(conn: &mut AsyncPgConnection, token: &OneTimeToken) -> QueryResult<()> {
    diesel::delete(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(&token.user_id))
            .filter(one_time_tokens::purpose.eq(token.purpose.as_str())),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(one_time_tokens::table)
        .values((
            one_time_tokens::token.eq(token.token.as_str()),
            one_time_tokens::user_id.eq(&token.user_id),
            one_time_tokens::purpose.eq(token.purpose.as_str()),
            one_time_tokens::email.eq(token.email.as_deref()),
            one_time_tokens::expires_at.eq(token.expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

#[async_trait]
impl OneTimeTokens for PgStore {
    #[instrument(name = STORE_SPAN, skip_all, fields(op = "issue_token"))]
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), StoreError> {
        let _timed = observe::timed("issue_token");
        check_text("user_id", &token.user_id)?;
        if let Some(email) = &token.email {
            check_text("email", email)?;
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                lock_user(conn, &token.user_id).await?;
                insert_token(conn, token).await
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "issue_token_for_session"))]
    async fn issue_token_for_session(
        &self,
        token: &OneTimeToken,
        session_id: &str,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("issue_token_for_session");
        check_text("user_id", &token.user_id)?;
        if let Some(email) = &token.email {
            check_text("email", email)?;
        }
        if !storable(session_id) || !storable(verified_hash) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                // The user's lock, as every writer of its links and sessions takes it first, and
                // only over the hash that was verified: a reset or change of password committed
                // since finds nothing.
                let verified = users::table
                    .filter(users::id.eq(&token.user_id))
                    .filter(users::password_hash.eq(verified_hash))
                    .select(users::id)
                    .for_no_key_update()
                    .first::<String>(conn)
                    .await
                    .optional()?;
                if verified.is_none() {
                    return Ok(false);
                }
                // The session still live under that lock: a sign-out everywhere committed since
                // took it with the user's links.
                let live = diesel::select(diesel::dsl::exists(
                    sessions::table
                        .filter(sessions::id.eq(session_id))
                        .filter(sessions::user_id.eq(&token.user_id)),
                ))
                .get_result::<bool>(conn)
                .await?;
                if !live {
                    return Ok(false);
                }
                insert_token(conn, token).await.map(|()| true)
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "token_is_live"))]
    async fn token_is_live(
        &self,
        token: &TokenDigest,
        purpose: TokenPurpose,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("token_is_live");
        let digest = token.as_str();
        let purpose = purpose.as_str();
        run!(self, Retry::Idempotent, |conn| async move {
            diesel::select(diesel::dsl::exists(
                one_time_tokens::table
                    .filter(one_time_tokens::token.eq(digest))
                    .filter(one_time_tokens::purpose.eq(purpose))
                    .filter(one_time_tokens::expires_at.gt(diesel::dsl::now)),
            ))
            .get_result::<bool>(conn)
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "use_token"))]
    async fn use_token(
        &self,
        token: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError> {
        let _timed = observe::timed("use_token");
        if let TokenUse::ResetPassword { password_hash } = use_ {
            check_text("password_hash", password_hash)?;
        }
        let digest = token.as_str();
        let purpose = use_.purpose().as_str();
        run!(self, Retry::Never, |conn| async move {
            match conn
                .transaction(async |conn| use_token_in(conn, digest, purpose, use_).await)
                .await
            {
                // Rolled back on purpose: nothing to apply the token to.
                Err(diesel::result::Error::RollbackTransaction) => Ok(None),
                other => other,
            }
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "cleanup_expired_tokens"))]
    async fn cleanup_expired_tokens(&self) -> Result<u64, StoreError> {
        let _timed = observe::timed("cleanup_expired_tokens");
        let mut total = 0;
        loop {
            // Bounded batches, as the sessions' sweep; deleting expired rows twice is harmless.
            let deleted = run!(self, Retry::Idempotent, |conn| async move {
                Prepared(
                    diesel::sql_query(include_str!("../cleanup_expired_tokens.sql"))
                        .bind::<BigInt, _>(BATCH_SIZE as i64),
                )
                .execute(conn)
                .await
            })? as u64;
            total += deleted;
            if deleted < BATCH_SIZE {
                return Ok(total);
            }
        }
    }
}

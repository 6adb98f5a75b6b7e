//! [`SecondFactors`] on PostgreSQL: sealed TOTP secrets with their last accepted step
//! compared-and-set, recovery codes and challenges consumed by `DELETE … RETURNING`, each
//! multi-statement write under the user's lock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tracing::instrument;

use super::{BATCH_SIZE, PgStore, Retry, check_session, insert_session, lock_user, storable};
use crate::model::{
    SecondFactorProof, Session, SignInChallenge, TokenPurpose, TotpSecret, TrustedDevice,
};
use crate::postgres::error::check_text;
use crate::postgres::observe;
use crate::postgres::prepared::Prepared;
use crate::postgres::schema::{
    one_time_tokens, recovery_codes, sessions, totp_secrets, trusted_devices, two_factor_challenges,
};
use crate::store::{SecondFactors, StoreError};
use crate::telemetry::STORE_SPAN;
use crate::token::TokenDigest;

/// A row of `totp_secrets`.
#[derive(Queryable, Selectable)]
#[diesel(table_name = totp_secrets, check_for_backend(diesel::pg::Pg))]
struct TotpRow {
    user_id: String,
    key_id: String,
    ciphertext: Vec<u8>,
    confirmed_at: Option<DateTime<Utc>>,
    last_used_step: Option<i64>,
}

impl From<TotpRow> for TotpSecret {
    fn from(row: TotpRow) -> Self {
        Self {
            user_id: row.user_id,
            key_id: row.key_id,
            ciphertext: row.ciphertext,
            confirmed_at: row.confirmed_at,
            last_used_step: row.last_used_step,
        }
    }
}

/// A row of `two_factor_challenges`.
#[derive(Queryable, Selectable)]
#[diesel(table_name = two_factor_challenges, check_for_backend(diesel::pg::Pg))]
struct ChallengeRow {
    challenge_digest: String,
    user_id: String,
    persistent: bool,
    failures: i32,
    expires_at: DateTime<Utc>,
}

impl From<ChallengeRow> for SignInChallenge {
    fn from(row: ChallengeRow) -> Self {
        Self {
            digest: TokenDigest::from_stored(row.challenge_digest),
            user_id: row.user_id,
            persistent: row.persistent,
            failures: u32::try_from(row.failures).unwrap_or(0),
            expires_at: row.expires_at,
        }
    }
}

/// One batch of `cleanup_second_factors.sql`: the rows each table lost.
#[derive(QueryableByName)]
struct DeletedRows {
    #[diesel(sql_type = BigInt)]
    challenges: i64,
    #[diesel(sql_type = BigInt)]
    devices: i64,
    #[diesel(sql_type = BigInt)]
    enrolments: i64,
}

/// Replaces the user's recovery codes with `codes`.
async fn replace_codes(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    codes: &[TokenDigest],
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = codes
        .iter()
        .map(|code| {
            (
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_digest.eq(code.as_str()),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// Records `step` as the user's last accepted one if it is later (the compare-and-set every
/// accepted code goes through); says whether it was.
async fn accept_step(conn: &mut AsyncPgConnection, user_id: &str, step: i64) -> QueryResult<bool> {
    diesel::update(
        totp_secrets::table
            .filter(totp_secrets::user_id.eq(user_id))
            .filter(totp_secrets::confirmed_at.is_not_null())
            .filter(
                totp_secrets::last_used_step
                    .is_null()
                    .or(totp_secrets::last_used_step.lt(step)),
            ),
    )
    .set(totp_secrets::last_used_step.eq(step))
    .execute(conn)
    .await
    .map(|updated| updated == 1)
}

/// Deletes the user's second factor: its secret, recovery codes, trusted devices and challenges;
/// says whether it had a secret.
pub(super) async fn delete_second_factor_of(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> QueryResult<bool> {
    let removed = diesel::delete(totp_secrets::table.filter(totp_secrets::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    delete_trusted_devices_of(conn, user_id).await?;
    delete_challenges_of(conn, user_id).await?;
    // Its removal link has nothing left to remove.
    diesel::delete(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user_id))
            .filter(one_time_tokens::purpose.eq(TokenPurpose::RemoveTwoFactor.as_str())),
    )
    .execute(conn)
    .await?;
    Ok(removed == 1)
}

/// Deletes the user's challenges: what ends the sign-ins waiting for a code when the password,
/// the address or the second factor changes.
pub(super) async fn delete_challenges_of(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> QueryResult<usize> {
    diesel::delete(two_factor_challenges::table.filter(two_factor_challenges::user_id.eq(user_id)))
        .execute(conn)
        .await
}

/// Deletes the user's trusted devices: they end with every session of the user.
pub(super) async fn delete_trusted_devices_of(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> QueryResult<usize> {
    diesel::delete(trusted_devices::table.filter(trusted_devices::user_id.eq(user_id)))
        .execute(conn)
        .await
}

/// Rolled back on purpose: the outcome is "nothing done".
fn nothing<T>(outcome: QueryResult<Option<T>>) -> QueryResult<Option<T>> {
    match outcome {
        Err(diesel::result::Error::RollbackTransaction) => Ok(None),
        other => other,
    }
}

#[async_trait]
impl SecondFactors for PgStore {
    #[instrument(name = STORE_SPAN, skip_all, fields(op = "totp_secret"))]
    async fn totp_secret(&self, user_id: &str) -> Result<Option<TotpSecret>, StoreError> {
        let _timed = observe::timed("totp_secret");
        if !storable(user_id) {
            return Ok(None);
        }
        run!(self, Retry::Idempotent, |conn| async move {
            totp_secrets::table
                .find(user_id)
                .select(TotpRow::as_select())
                .first(conn)
                .await
                .optional()
                .map(|row| row.map(TotpSecret::from))
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "begin_totp"))]
    async fn begin_totp(&self, secret: &TotpSecret) -> Result<bool, StoreError> {
        let _timed = observe::timed("begin_totp");
        check_text("user_id", &secret.user_id)?;
        check_text("key_id", &secret.key_id)?;
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                if !lock_user(conn, &secret.user_id).await? {
                    return Ok(false);
                }
                // Under the user's lock: a confirmed secret stays, a pending one is replaced.
                let confirmed = diesel::select(diesel::dsl::exists(
                    totp_secrets::table
                        .filter(totp_secrets::user_id.eq(&secret.user_id))
                        .filter(totp_secrets::confirmed_at.is_not_null()),
                ))
                .get_result::<bool>(conn)
                .await?;
                if confirmed {
                    return Ok(false);
                }
                diesel::delete(totp_secrets::table.find(&secret.user_id))
                    .execute(conn)
                    .await?;
                diesel::insert_into(totp_secrets::table)
                    .values((
                        totp_secrets::user_id.eq(&secret.user_id),
                        totp_secrets::key_id.eq(&secret.key_id),
                        totp_secrets::ciphertext.eq(&secret.ciphertext),
                    ))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "confirm_totp"))]
    async fn confirm_totp(
        &self,
        user_id: &str,
        ciphertext: &[u8],
        step: i64,
        recovery_codes: &[TokenDigest],
        keep_session: &str,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("confirm_totp");
        if !storable(user_id) || !storable(keep_session) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                if !lock_user(conn, user_id).await? {
                    return Ok(false);
                }
                let confirmed = diesel::update(
                    totp_secrets::table
                        .filter(totp_secrets::user_id.eq(user_id))
                        .filter(totp_secrets::confirmed_at.is_null())
                        .filter(totp_secrets::ciphertext.eq(ciphertext)),
                )
                .set((
                    totp_secrets::confirmed_at.eq(diesel::dsl::now),
                    totp_secrets::last_used_step.eq(step),
                ))
                .execute(conn)
                .await?;
                if confirmed != 1 {
                    return Ok(false);
                }
                replace_codes(conn, user_id, recovery_codes).await?;
                // Sessions opened with the password alone end, the one that confirmed stays.
                diesel::delete(
                    sessions::table
                        .filter(sessions::user_id.eq(user_id))
                        .filter(sessions::id.ne(keep_session)),
                )
                .execute(conn)
                .await?;
                delete_trusted_devices_of(conn, user_id).await?;
                delete_challenges_of(conn, user_id).await?;
                Ok(true)
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "reseal_totp"))]
    async fn reseal_totp(
        &self,
        user_id: &str,
        expected: &[u8],
        key_id: &str,
        ciphertext: &[u8],
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("reseal_totp");
        check_text("key_id", key_id)?;
        if !storable(user_id) {
            return Ok(false);
        }
        run!(self, Retry::Idempotent, |conn| async move {
            diesel::update(
                totp_secrets::table
                    .filter(totp_secrets::user_id.eq(user_id))
                    .filter(totp_secrets::ciphertext.eq(expected)),
            )
            .set((
                totp_secrets::key_id.eq(key_id),
                totp_secrets::ciphertext.eq(ciphertext),
            ))
            .execute(conn)
            .await
            .map(|updated| updated == 1)
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "accept_totp_step"))]
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let _timed = observe::timed("accept_totp_step");
        if !storable(user_id) {
            return Ok(false);
        }
        // Not retried: a lost answer to an accepted step must not turn into a refusal.
        run!(self, Retry::Never, |conn| accept_step(conn, user_id, step))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "replace_recovery_codes"))]
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        step: i64,
        recovery_codes: &[TokenDigest],
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("replace_recovery_codes");
        if !storable(user_id) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                if !lock_user(conn, user_id).await? || !accept_step(conn, user_id, step).await? {
                    return Ok(false);
                }
                replace_codes(conn, user_id, recovery_codes).await?;
                Ok(true)
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "recovery_codes_left"))]
    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError> {
        let _timed = observe::timed("recovery_codes_left");
        if !storable(user_id) {
            return Ok(0);
        }
        let count = run!(self, Retry::Idempotent, |conn| async move {
            recovery_codes::table
                .filter(recovery_codes::user_id.eq(user_id))
                .count()
                .get_result::<i64>(conn)
                .await
        })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "remove_second_factor"))]
    async fn remove_second_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        let _timed = observe::timed("remove_second_factor");
        if !storable(user_id) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                lock_user(conn, user_id).await?;
                delete_second_factor_of(conn, user_id).await
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "create_challenge"))]
    async fn create_challenge(&self, challenge: &SignInChallenge) -> Result<(), StoreError> {
        let _timed = observe::timed("create_challenge");
        check_text("user_id", &challenge.user_id)?;
        let failures = i32::try_from(challenge.failures).unwrap_or(i32::MAX);
        run!(self, Retry::Never, |conn| async move {
            diesel::insert_into(two_factor_challenges::table)
                .values((
                    two_factor_challenges::challenge_digest.eq(challenge.digest.as_str()),
                    two_factor_challenges::user_id.eq(&challenge.user_id),
                    two_factor_challenges::persistent.eq(challenge.persistent),
                    two_factor_challenges::failures.eq(failures),
                    two_factor_challenges::expires_at.eq(challenge.expires_at),
                ))
                .execute(conn)
                .await
                .map(drop)
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "get_challenge"))]
    async fn get_challenge(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<SignInChallenge>, StoreError> {
        let _timed = observe::timed("get_challenge");
        let digest = digest.as_str();
        run!(self, Retry::Idempotent, |conn| async move {
            two_factor_challenges::table
                .find(digest)
                .filter(two_factor_challenges::expires_at.gt(diesel::dsl::now))
                .select(ChallengeRow::as_select())
                .first(conn)
                .await
                .optional()
                .map(|row| row.map(SignInChallenge::from))
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "fail_challenge"))]
    async fn fail_challenge(
        &self,
        digest: &TokenDigest,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("fail_challenge");
        let digest = digest.as_str();
        let max = i32::try_from(max_failures).unwrap_or(i32::MAX);
        run!(self, Retry::Never, |conn| async move {
            let failures: Option<i32> = diesel::update(
                two_factor_challenges::table
                    .find(digest)
                    .filter(two_factor_challenges::expires_at.gt(diesel::dsl::now)),
            )
            .set(two_factor_challenges::failures.eq(two_factor_challenges::failures + 1))
            .returning(two_factor_challenges::failures)
            .get_result(conn)
            .await
            .optional()?;
            match failures {
                Some(failures) if failures < max => Ok(true),
                Some(_) => {
                    diesel::delete(two_factor_challenges::table.find(digest))
                        .execute(conn)
                        .await?;
                    Ok(false)
                }
                None => Ok(false),
            }
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "complete_challenge"))]
    async fn complete_challenge(
        &self,
        digest: &TokenDigest,
        proof: SecondFactorProof<'_>,
        session: &Session,
    ) -> Result<Option<u64>, StoreError> {
        let _timed = observe::timed("complete_challenge");
        check_session(session)?;
        let digest = digest.as_str();
        let user_id = session.user_id.as_str();
        run!(self, Retry::Never, |conn| async move {
            nothing(
                conn.transaction(async |conn| {
                    if !lock_user(conn, user_id).await? {
                        return Ok(None);
                    }
                    // Consumed by the statement that reads it: of concurrent answers, one.
                    let consumed: Option<String> = diesel::delete(
                        two_factor_challenges::table
                            .find(digest)
                            .filter(two_factor_challenges::user_id.eq(user_id))
                            .filter(two_factor_challenges::expires_at.gt(diesel::dsl::now)),
                    )
                    .returning(two_factor_challenges::user_id)
                    .get_result(conn)
                    .await
                    .optional()?;
                    if consumed.is_none() {
                        return Ok(None);
                    }
                    let spent = match proof {
                        SecondFactorProof::Totp { step } => {
                            accept_step(conn, user_id, step).await?
                        }
                        SecondFactorProof::RecoveryCode(code) => diesel::delete(
                            recovery_codes::table
                                .filter(recovery_codes::user_id.eq(user_id))
                                .filter(recovery_codes::code_digest.eq(code.as_str())),
                        )
                        .returning(recovery_codes::code_digest)
                        .get_result::<String>(conn)
                        .await
                        .optional()?
                        .is_some(),
                    };
                    if !spent {
                        // The challenge stays for another try: nothing of this call is kept.
                        return Err(diesel::result::Error::RollbackTransaction);
                    }
                    insert_session(conn, session).await?;
                    let left = recovery_codes::table
                        .filter(recovery_codes::user_id.eq(user_id))
                        .count()
                        .get_result::<i64>(conn)
                        .await?;
                    Ok(Some(u64::try_from(left).unwrap_or(0)))
                })
                .await,
            )
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "trust_device"))]
    async fn trust_device(&self, device: &TrustedDevice) -> Result<(), StoreError> {
        let _timed = observe::timed("trust_device");
        check_text("user_id", &device.user_id)?;
        run!(self, Retry::Never, |conn| async move {
            diesel::insert_into(trusted_devices::table)
                .values((
                    trusted_devices::device_digest.eq(device.digest.as_str()),
                    trusted_devices::user_id.eq(&device.user_id),
                    trusted_devices::expires_at.eq(device.expires_at),
                ))
                .execute(conn)
                .await
                .map(drop)
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "is_trusted_device"))]
    async fn is_trusted_device(
        &self,
        digest: &TokenDigest,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("is_trusted_device");
        if !storable(user_id) {
            return Ok(false);
        }
        let digest = digest.as_str();
        run!(self, Retry::Idempotent, |conn| async move {
            diesel::select(diesel::dsl::exists(
                trusted_devices::table
                    .find(digest)
                    .filter(trusted_devices::user_id.eq(user_id))
                    .filter(trusted_devices::expires_at.gt(diesel::dsl::now)),
            ))
            .get_result::<bool>(conn)
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "cleanup_second_factors"))]
    async fn cleanup_second_factors(&self) -> Result<u64, StoreError> {
        let _timed = observe::timed("cleanup_second_factors");
        let mut total = 0;
        loop {
            // Bounded batches, as the other sweeps; deleting a due row twice is harmless.
            let row = run!(self, Retry::Idempotent, |conn| async move {
                Prepared(
                    diesel::sql_query(include_str!("../cleanup_second_factors.sql"))
                        .bind::<BigInt, _>(BATCH_SIZE as i64),
                )
                .get_result::<DeletedRows>(conn)
                .await
            })?;
            total += u64::try_from(row.challenges + row.devices + row.enrolments).unwrap_or(0);
            if row.challenges.max(row.devices).max(row.enrolments) < BATCH_SIZE as i64 {
                return Ok(total);
            }
        }
    }
}

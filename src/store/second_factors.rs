//! Second factors (TOTP secrets, recovery codes, the sign-in challenges that wait for them and
//! the browsers trusted to skip them): a store capability.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{SecondFactorProof, Session, SignInChallenge, TotpSecret, TrustedDevice};
use crate::token::TokenDigest;

#[cfg(doc)]
use super::Store;

/// Second factors. The engine needs it for the two-factor methods of [`Auth`](crate::Auth) and
/// their routes; a store offers it through [`Store::second_factors`]. A store that offers it is
/// asked at every sign-in whether the account has a second factor, so that no configuration of
/// the engine can skip one that is on.
///
/// The store never sees a TOTP secret in clear (the engine seals it), a recovery code, a
/// challenge or a device token: only ciphertexts and digests.
///
/// Every user's rows go with the user. Ending sessions of a user by
/// [`SessionManagement`](super::SessionManagement) (one, the others, all of them, a change of
/// password) or by a password reset ends all its trusted devices too; whatever deletes a user's
/// one-time tokens (a new password, a new address, every session ended) deletes its pending
/// challenges, but not its link that removes a second factor
/// ([`TokenPurpose::RemoveTwoFactor`](crate::TokenPurpose::RemoveTwoFactor)), which only its use,
/// its expiry or the factor's removal ends.
#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// The user's TOTP secret, confirmed or pending; `Ok(None)` when it has none.
    ///
    /// # Errors
    /// On database failure.
    async fn totp_secret(&self, user_id: &str) -> Result<Option<TotpSecret>, StoreError>;

    /// Stores `secret` as the user's pending secret (`confirmed_at` and `last_used_step` are
    /// ignored: it is stored unconfirmed), replacing a pending one; says whether it did. `false`
    /// when the user has a confirmed secret (which stays) or does not exist.
    ///
    /// # Errors
    /// On database failure.
    async fn begin_totp(&self, secret: &TotpSecret) -> Result<bool, StoreError>;

    /// Confirms the user's pending secret, only while its ciphertext is still `ciphertext` (the
    /// one whose code was checked), in one transaction: marks it confirmed with `step` as its
    /// last accepted step, replaces the user's recovery codes with `recovery_codes`, and ends
    /// every other session of the user but `keep_session` (sessions opened with the password
    /// alone), its trusted devices and its challenges. Says whether it did.
    ///
    /// # Errors
    /// On database failure; then nothing changed.
    async fn confirm_totp(
        &self,
        user_id: &str,
        ciphertext: &[u8],
        step: i64,
        recovery_codes: &[TokenDigest],
        keep_session: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces the ciphertext of the user's secret with `key_id`'s `ciphertext` (the same
    /// secret sealed under a newer key), only while it is still `expected`; says whether it did.
    ///
    /// # Errors
    /// On database failure.
    async fn reseal_totp(
        &self,
        user_id: &str,
        expected: &[u8],
        key_id: &str,
        ciphertext: &[u8],
    ) -> Result<bool, StoreError>;

    /// Accepts a code of time step `step` for the user's confirmed secret: records `step` as the
    /// last accepted only if it is later than the one recorded (a compare-and-set), so of
    /// concurrent calls with one step at most one gets `true`.
    ///
    /// # Errors
    /// On database failure.
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;

    /// Replaces the user's recovery codes with `recovery_codes`, in the transaction that accepts
    /// `step` as [`accept_totp_step`](Self::accept_totp_step) does; says whether it did (`false`:
    /// the step was not later than the last accepted, or there is no confirmed secret).
    ///
    /// # Errors
    /// On database failure; then nothing changed.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        step: i64,
        recovery_codes: &[TokenDigest],
    ) -> Result<bool, StoreError>;

    /// How many unused recovery codes the user has.
    ///
    /// # Errors
    /// On database failure.
    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError>;

    /// Removes the user's second factor: its secret (confirmed or pending), recovery codes,
    /// trusted devices and challenges, in one transaction; says whether it had a secret.
    ///
    /// # Errors
    /// On database failure; then nothing changed.
    async fn remove_second_factor(&self, user_id: &str) -> Result<bool, StoreError>;

    /// Stores `challenge`.
    ///
    /// # Errors
    /// On database failure, including an unknown user.
    async fn create_challenge(&self, challenge: &SignInChallenge) -> Result<(), StoreError>;

    /// The unexpired challenge whose digest is `digest`; `Ok(None)` for an unknown, expired or
    /// used one.
    ///
    /// # Errors
    /// On database failure.
    async fn get_challenge(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<SignInChallenge>, StoreError>;

    /// Counts a wrong code against the challenge `digest`, deleting it when it reaches
    /// `max_failures`; says whether the challenge still lives.
    ///
    /// # Errors
    /// On database failure.
    async fn fail_challenge(
        &self,
        digest: &TokenDigest,
        max_failures: u32,
    ) -> Result<bool, StoreError>;

    /// Completes the unexpired challenge `digest` of `session`'s user with `proof`, in one
    /// transaction: consumes the challenge (a `DELETE … RETURNING`), spends the proof (the TOTP
    /// step's compare-and-set, or the recovery code's `DELETE … RETURNING`) and inserts
    /// `session`. Answers the user's recovery codes left, or `Ok(None)` (nothing written) when
    /// the challenge is gone or the proof was already spent: of concurrent calls with one
    /// challenge, one code or one recovery code, at most one gets `Some`.
    ///
    /// # Errors
    /// On database failure; then nothing was written.
    async fn complete_challenge(
        &self,
        digest: &TokenDigest,
        proof: SecondFactorProof<'_>,
        session: &Session,
    ) -> Result<Option<u64>, StoreError>;

    /// Stores `device` as trusted by its user.
    ///
    /// # Errors
    /// On database failure, including an unknown user.
    async fn trust_device(&self, device: &TrustedDevice) -> Result<(), StoreError>;

    /// Whether `digest` is an unexpired trusted device of `user_id`.
    ///
    /// # Errors
    /// On database failure.
    async fn is_trusted_device(
        &self,
        digest: &TokenDigest,
        user_id: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes, in bounded batches, expired challenges and trusted devices, and enrolments left
    /// pending for a day; returns how many rows went.
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_second_factors(&self) -> Result<u64, StoreError>;
}

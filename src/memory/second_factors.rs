//! [`SecondFactors`] in memory: TOTP secrets with their compare-and-set steps, recovery codes,
//! the sign-in challenges that wait for a code and the browsers trusted to skip it.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::TimeDelta;

use super::store::{check_session, new_session};
use super::{MemoryStore, State, TotpRow, check_text, later, now, storable, stored, violation};
use crate::model::{
    SecondFactorProof, Session, SignInChallenge, TokenPurpose, TotpSecret, TrustedDevice,
};
use crate::store::{SecondFactors, StoreError};
use crate::token::TokenDigest;

/// How long an enrolment may stay pending before a sweep deletes it.
const PENDING_FOR: TimeDelta = TimeDelta::days(1);

fn check_codes(recovery_codes: &[TokenDigest]) -> Result<(), StoreError> {
    recovery_codes
        .iter()
        .try_for_each(|code| check_text("code_digest", code.as_str()))
}

impl State {
    /// The user's confirmed secret, if `step` is later than its last accepted one.
    fn step_acceptable(&self, user_id: &str, step: i64) -> bool {
        self.totp_secrets.get(user_id).is_some_and(|row| {
            row.secret.confirmed_at.is_some()
                && row.secret.last_used_step.is_none_or(|last| last < step)
        })
    }

    /// Records `step` as the user's last accepted step (checked by
    /// [`step_acceptable`](Self::step_acceptable) first).
    fn accept_step(&mut self, user_id: &str, step: i64) {
        if let Some(row) = self.totp_secrets.get_mut(user_id) {
            row.secret.last_used_step = Some(step);
        }
    }

    /// Replaces the user's recovery codes with `codes`; nothing changes when `codes` lists one
    /// twice (the key of `recovery_codes` is the user and the digest).
    fn replace_codes(&mut self, user_id: &str, codes: &[TokenDigest]) -> Result<(), StoreError> {
        let unique: HashSet<&TokenDigest> = codes.iter().collect();
        if unique.len() < codes.len() {
            return Err(violation(
                "a recovery code is listed twice (recovery_codes_pkey)",
            ));
        }
        self.recovery_codes.retain(|(owner, _)| owner != user_id);
        self.recovery_codes
            .extend(codes.iter().map(|code| (user_id.to_owned(), code.clone())));
        Ok(())
    }

    fn codes_left(&self, user_id: &str) -> u64 {
        self.recovery_codes
            .iter()
            .filter(|(owner, _)| owner == user_id)
            .count() as u64
    }

    /// Deletes the user's sign-in challenges.
    pub(super) fn delete_challenges_of(&mut self, user_id: &str) {
        self.challenges
            .retain(|_, challenge| challenge.user_id != user_id);
    }

    /// Deletes the user's second factor (secret, recovery codes, trusted devices, challenges, and
    /// the link that would remove it); says whether it had a secret.
    pub(super) fn delete_second_factor_of(&mut self, user_id: &str) -> bool {
        let had = self.totp_secrets.remove(user_id).is_some();
        self.recovery_codes.retain(|(owner, _)| owner != user_id);
        self.delete_trusted_devices_of(user_id);
        self.delete_challenges_of(user_id);
        self.tokens.retain(|_, token| {
            token.user_id != user_id || token.purpose != TokenPurpose::RemoveTwoFactor
        });
        had
    }

    /// Deletes the user's trusted devices.
    pub(super) fn delete_trusted_devices_of(&mut self, user_id: &str) {
        self.trusted_devices
            .retain(|_, device| device.user_id != user_id);
    }

    /// The unexpired challenge `digest`.
    fn live_challenge(&self, digest: &TokenDigest) -> Option<&SignInChallenge> {
        let now = now();
        self.challenges
            .get(digest)
            .filter(|challenge| challenge.expires_at > now)
    }
}

#[async_trait]
impl SecondFactors for MemoryStore {
    async fn totp_secret(&self, user_id: &str) -> Result<Option<TotpSecret>, StoreError> {
        if !storable(user_id) {
            return Ok(None);
        }
        let state = self.enter()?;
        Ok(state
            .totp_secrets
            .get(user_id)
            .map(|row| row.secret.clone()))
    }

    async fn begin_totp(&self, secret: &TotpSecret) -> Result<bool, StoreError> {
        check_text("user_id", &secret.user_id)?;
        check_text("key_id", &secret.key_id)?;
        let mut state = self.enter()?;
        let confirmed = state
            .totp_secrets
            .get(&secret.user_id)
            .is_some_and(|row| row.secret.confirmed_at.is_some());
        if confirmed || !state.users.contains_key(&secret.user_id) {
            return Ok(false);
        }
        // A new enrolment, with a day of its own before a sweep takes it.
        let row = TotpRow {
            secret: TotpSecret {
                confirmed_at: None,
                last_used_step: None,
                ..secret.clone()
            },
            created_at: now(),
        };
        state.totp_secrets.insert(secret.user_id.clone(), row);
        Ok(true)
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        ciphertext: &[u8],
        step: i64,
        recovery_codes: &[TokenDigest],
        keep_session: &str,
    ) -> Result<bool, StoreError> {
        check_codes(recovery_codes)?;
        // A session to keep that cannot be stored is one no request holds: nothing is confirmed
        // for it (rather than every session ended).
        if !storable(user_id) || !storable(keep_session) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        let pending = state.totp_secrets.get(user_id).is_some_and(|row| {
            row.secret.confirmed_at.is_none() && row.secret.ciphertext == ciphertext
        });
        if !pending {
            return Ok(false);
        }
        state.replace_codes(user_id, recovery_codes)?;
        if let Some(row) = state.totp_secrets.get_mut(user_id) {
            row.secret.confirmed_at = Some(now());
            row.secret.last_used_step = Some(step);
        }
        // Whatever the password alone opened or allowed ends.
        state.delete_sessions_of(user_id, Some(keep_session));
        state.delete_trusted_devices_of(user_id);
        state.delete_challenges_of(user_id);
        Ok(true)
    }

    async fn reseal_totp(
        &self,
        user_id: &str,
        expected: &[u8],
        key_id: &str,
        ciphertext: &[u8],
    ) -> Result<bool, StoreError> {
        check_text("key_id", key_id)?;
        if !storable(user_id) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        match state.totp_secrets.get_mut(user_id) {
            Some(row) if row.secret.ciphertext == expected => {
                row.secret.key_id = key_id.to_owned();
                row.secret.ciphertext = ciphertext.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        if !storable(user_id) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        if !state.step_acceptable(user_id, step) {
            return Ok(false);
        }
        state.accept_step(user_id, step);
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        step: i64,
        recovery_codes: &[TokenDigest],
    ) -> Result<bool, StoreError> {
        check_codes(recovery_codes)?;
        if !storable(user_id) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        if !state.step_acceptable(user_id, step) {
            return Ok(false);
        }
        state.replace_codes(user_id, recovery_codes)?;
        state.accept_step(user_id, step);
        Ok(true)
    }

    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError> {
        if !storable(user_id) {
            return Ok(0);
        }
        Ok(self.enter()?.codes_left(user_id))
    }

    async fn remove_second_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        if !storable(user_id) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        Ok(state.delete_second_factor_of(user_id))
    }

    async fn create_challenge(&self, challenge: &SignInChallenge) -> Result<(), StoreError> {
        check_text("user_id", &challenge.user_id)?;
        check_text("challenge_digest", challenge.digest.as_str())?;
        let mut state = self.enter()?;
        if state.challenges.contains_key(&challenge.digest) {
            return Err(violation(
                "a challenge has this digest (two_factor_challenges_pkey)",
            ));
        }
        if !state.users.contains_key(&challenge.user_id) {
            return Err(violation(
                "no user has the challenge's user_id (foreign key)",
            ));
        }
        let row = SignInChallenge {
            expires_at: stored(challenge.expires_at),
            ..challenge.clone()
        };
        state.challenges.insert(challenge.digest.clone(), row);
        Ok(())
    }

    async fn get_challenge(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<SignInChallenge>, StoreError> {
        Ok(self.enter()?.live_challenge(digest).cloned())
    }

    async fn fail_challenge(
        &self,
        digest: &TokenDigest,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        let mut state = self.enter()?;
        if state.live_challenge(digest).is_none() {
            return Ok(false);
        }
        let Some(challenge) = state.challenges.get_mut(digest) else {
            return Ok(false);
        };
        challenge.failures = challenge.failures.saturating_add(1);
        if challenge.failures < max_failures {
            return Ok(true);
        }
        state.challenges.remove(digest);
        Ok(false)
    }

    async fn complete_challenge(
        &self,
        digest: &TokenDigest,
        proof: SecondFactorProof<'_>,
        session: &Session,
    ) -> Result<Option<u64>, StoreError> {
        check_session(session)?;
        let mut state = self.enter()?;
        let Some(user_id) = state
            .live_challenge(digest)
            .map(|challenge| challenge.user_id.clone())
        else {
            return Ok(None);
        };
        if session.user_id != user_id {
            return Ok(None);
        }
        // Every check before the first write: all or nothing.
        let spendable = match proof {
            SecondFactorProof::Totp { step } => state.step_acceptable(&user_id, step),
            SecondFactorProof::RecoveryCode(code) => state
                .recovery_codes
                .contains(&(user_id.clone(), code.clone())),
        };
        if !spendable {
            return Ok(None);
        }
        state.check_new_session(session)?;
        state.challenges.remove(digest);
        match proof {
            SecondFactorProof::Totp { step } => state.accept_step(&user_id, step),
            SecondFactorProof::RecoveryCode(code) => {
                state
                    .recovery_codes
                    .remove(&(user_id.clone(), code.clone()));
            }
        }
        state
            .sessions
            .insert(session.id.clone(), new_session(session, now()));
        Ok(Some(state.codes_left(&user_id)))
    }

    async fn trust_device(&self, device: &TrustedDevice) -> Result<(), StoreError> {
        check_text("user_id", &device.user_id)?;
        check_text("device_digest", device.digest.as_str())?;
        let mut state = self.enter()?;
        if state.trusted_devices.contains_key(&device.digest) {
            return Err(violation(
                "a trusted device has this digest (trusted_devices_pkey)",
            ));
        }
        if !state.users.contains_key(&device.user_id) {
            return Err(violation("no user has the device's user_id (foreign key)"));
        }
        let row = TrustedDevice {
            expires_at: stored(device.expires_at),
            ..device.clone()
        };
        state.trusted_devices.insert(device.digest.clone(), row);
        Ok(())
    }

    async fn is_trusted_device(
        &self,
        digest: &TokenDigest,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        if !storable(user_id) {
            return Ok(false);
        }
        let state = self.enter()?;
        let now = now();
        Ok(state
            .trusted_devices
            .get(digest)
            .is_some_and(|device| device.user_id == user_id && device.expires_at > now))
    }

    /// Deletes everything due at once: a sweep of memory blocks nobody.
    async fn cleanup_second_factors(&self) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let now = now();
        let pending_since = later(now, -PENDING_FOR);
        let held = |state: &State| {
            state.challenges.len() + state.trusted_devices.len() + state.totp_secrets.len()
        };
        let before = held(&state);
        state
            .challenges
            .retain(|_, challenge| challenge.expires_at >= now);
        state
            .trusted_devices
            .retain(|_, device| device.expires_at >= now);
        state
            .totp_secrets
            .retain(|_, row| row.secret.confirmed_at.is_some() || row.created_at >= pending_since);
        Ok((before - held(&state)) as u64)
    }
}

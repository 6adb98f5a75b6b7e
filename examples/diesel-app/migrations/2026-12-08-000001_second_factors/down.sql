-- Back to the previous schema exactly (indexes go with their tables). Every second factor is
-- forgotten: after this, accounts sign in with their password alone.
DELETE FROM one_time_tokens WHERE purpose = 'remove_two_factor';
ALTER TABLE one_time_tokens DROP CONSTRAINT IF EXISTS one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email', 'cancel_email_change'));
DROP TABLE IF EXISTS trusted_devices;
DROP TABLE IF EXISTS two_factor_challenges;
DROP TABLE IF EXISTS recovery_codes;
DROP TABLE IF EXISTS totp_secrets;

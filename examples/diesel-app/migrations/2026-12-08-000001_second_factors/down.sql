-- Back to the previous schema exactly (indexes go with their tables). Every second factor is
-- forgotten: after this, accounts sign in with their password alone.
DROP TABLE IF EXISTS trusted_devices;
DROP TABLE IF EXISTS two_factor_challenges;
DROP TABLE IF EXISTS recovery_codes;
DROP TABLE IF EXISTS totp_secrets;

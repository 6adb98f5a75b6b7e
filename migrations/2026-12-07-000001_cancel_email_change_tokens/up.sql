-- One-time tokens gain a purpose: the link mailed to the old address at a change of email,
-- which cancels the change. The constraint is the third migration's list plus that one.
ALTER TABLE one_time_tokens DROP CONSTRAINT IF EXISTS one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email', 'cancel_email_change'));

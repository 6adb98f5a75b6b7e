-- Back to the previous schema exactly: the old constraint cannot hold a cancel link, and a cancel
-- link without its purpose is worth nothing.
DELETE FROM one_time_tokens WHERE purpose = 'cancel_email_change';
ALTER TABLE one_time_tokens DROP CONSTRAINT IF EXISTS one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email'));

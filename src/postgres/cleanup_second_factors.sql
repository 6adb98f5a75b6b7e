-- One batch of the second factor's cleanup: challenges and trusted devices past their end, and
-- enrolments left pending for a day. Bounded and SKIP LOCKED, as the other sweeps.
WITH expired_challenges AS (
  SELECT challenge_digest FROM two_factor_challenges
  WHERE expires_at < now()
  ORDER BY expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), expired_devices AS (
  SELECT device_digest FROM trusted_devices
  WHERE expires_at < now()
  ORDER BY expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), abandoned AS (
  SELECT user_id FROM totp_secrets
  WHERE confirmed_at IS NULL AND created_at < now() - interval '1 day'
  ORDER BY created_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), gone_challenges AS (
  DELETE FROM two_factor_challenges
  WHERE challenge_digest IN (SELECT challenge_digest FROM expired_challenges)
  RETURNING 1
), gone_devices AS (
  DELETE FROM trusted_devices WHERE device_digest IN (SELECT device_digest FROM expired_devices)
  RETURNING 1
), gone_enrolments AS (
  -- Still pending: a confirmation that committed meanwhile keeps its secret.
  DELETE FROM totp_secrets
  WHERE user_id IN (SELECT user_id FROM abandoned) AND confirmed_at IS NULL
  RETURNING 1
)
-- The three counts: the caller adds them up, and goes on while any filled its batch.
SELECT (SELECT count(*) FROM gone_challenges) AS challenges,
       (SELECT count(*) FROM gone_devices) AS devices,
       (SELECT count(*) FROM gone_enrolments) AS enrolments;

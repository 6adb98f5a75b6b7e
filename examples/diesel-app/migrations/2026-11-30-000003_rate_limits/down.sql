-- Back to the third migration's schema exactly (their indexes go with the tables).
DROP TABLE IF EXISTS sign_in_failures;
DROP TABLE IF EXISTS rate_limits;

-- Back to the third migration's schema exactly.
DROP TABLE IF EXISTS one_time_tokens;

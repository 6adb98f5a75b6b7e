-- Back to the previous schema exactly (the index goes with the table). Locks keep the end the
-- up migration gave them: the previous version reads such a row as a lock until then.
DROP TABLE IF EXISTS sign_in_device_failures;

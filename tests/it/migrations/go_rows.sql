-- Rows as the Go AuthInGo writes them: bcrypt hashes, raw tokens, NULLs where its columns allow
-- them, and one session long expired.
INSERT INTO users (id, email, name, password_hash, email_verified, created_at, updated_at) VALUES
  ('usr_0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'ada@example.com', 'Ada Lovelace',
   '$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy', TRUE,
   '2025-01-02 03:04:05.123456+00', '2025-02-03 04:05:06+00'),
  ('usr_a1b2c3d4e5f60718293a4b5c6d7e8f90', 'grace@example.com', 'Grace Hopper',
   '$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3/Cj3LhY0hQ0Z8Rz1KhPq6e', NULL, DEFAULT, NULL);

INSERT INTO sessions (id, user_id, token, refresh_token, refresh_expires_at, expires_at, created_at) VALUES
  ('ses_00112233445566778899aabbccddeeff', 'usr_0f1e2d3c4b5a69788796a5b4c3d2e1f0',
   'Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo', 'cmVmcmVzaC10b2tlbi0wMDAxLXJhdy1mcm9tLWdv',
   now() + interval '30 days', now() + interval '15 minutes', DEFAULT),
  ('ses_ffeeddccbbaa99887766554433221100', 'usr_0f1e2d3c4b5a69788796a5b4c3d2e1f0',
   'b2xkLWV4cGlyZWQtYWNjZXNzLXRva2VuLTAwMDI', 'b2xkLWV4cGlyZWQtcmVmcmVzaC10b2tlbi0wMDAy',
   '2025-01-01 00:00:00+00', '2024-12-02 00:15:00+00', '2024-12-02 00:00:00+00'),
  ('ses_0a1b2c3d4e5f60718293a4b5c6d7e8f9', 'usr_a1b2c3d4e5f60718293a4b5c6d7e8f90',
   'Z3JhY2UtYWNjZXNzLXRva2VuLTAwMDM', 'Z3JhY2UtcmVmcmVzaC10b2tlbi0wMDAz',
   now() + interval '29 days', now() - interval '1 hour', NULL);

-- What the emulator console shows and steers (docs/emulator.md): the SQLite store's
-- migrations/0004_console.sql in PostgreSQL types.
-- A disabled user (disabled_at set) is refused sign-in, refresh and user/me.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
-- The last sign-in (anonymous or WeChat); a refresh is not a sign-in.
ALTER TABLE users ADD COLUMN last_sign_in_at BIGINT;
-- The device a session family was started from (x-device-id) and its last refresh.
ALTER TABLE families ADD COLUMN device_id TEXT;
ALTER TABLE families ADD COLUMN last_used_at BIGINT;
-- The console's search: keyset pages ordered by uid, by openid and by nickname.
CREATE INDEX identities_openid ON identities(openid, uid);
CREATE INDEX users_name ON users(name, uid);

-- The first schema of the local CloudBase auth server. Times are Unix seconds.
-- Secrets are never stored in plaintext: refresh and provider tokens appear only as
-- SHA-256 hashes; a rotated refresh token keeps its successor sealed with a pad that
-- only the holder of the rotated token can compute (see server/secrets.rs).

CREATE TABLE envs (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    uid         TEXT PRIMARY KEY NOT NULL,
    env         TEXT NOT NULL REFERENCES envs(id),
    anonymous   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX users_env ON users(env, created_at);

-- One WeChat identity: the openid a Mini Program (appid) knows the user by.
CREATE TABLE identities (
    env         TEXT NOT NULL,
    appid       TEXT NOT NULL,
    openid      TEXT NOT NULL,
    unionid     TEXT,
    uid         TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (env, appid, openid)
);
CREATE INDEX identities_uid ON identities(uid);

-- A session family: every refresh token descended from one sign-in. Revoking the
-- family ends the session (sign-out, or reuse of a rotated refresh token).
CREATE TABLE families (
    id          TEXT PRIMARY KEY NOT NULL,
    uid         TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    env         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX families_uid ON families(uid);

CREATE TABLE refresh_tokens (
    hash             BLOB PRIMARY KEY NOT NULL,
    family           TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    rotated_at       INTEGER,
    successor_hash   BLOB,
    successor_sealed BLOB
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

-- Short-lived, single-use results of provider/token (a code2Session exchange).
CREATE TABLE provider_tokens (
    hash        BLOB PRIMARY KEY NOT NULL,
    env         TEXT NOT NULL,
    appid       TEXT NOT NULL,
    openid      TEXT NOT NULL,
    unionid     TEXT,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX provider_tokens_expires ON provider_tokens(expires_at);

-- The PostgreSQL schema of the auth server: the data model of the SQLite store
-- (migrations/), in PostgreSQL types. Times are Unix seconds. Secrets are never stored
-- in plaintext: refresh and provider tokens and emulated WeChat codes appear only as
-- SHA-256 hashes; a rotated refresh token keeps its successor sealed with a pad that
-- only the holder of the rotated token can compute (see server/secrets.rs).

CREATE TABLE envs (
    id          TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

-- Ids, openids and nicknames compare in byte order (COLLATE "C"): the console's keyset
-- pages order by them, in the same order as the server's own string comparisons.
CREATE TABLE users (
    uid         TEXT COLLATE "C" PRIMARY KEY,
    env         TEXT NOT NULL REFERENCES envs(id),
    anonymous   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- Set with PATCH user/profile (NULL: never set).
    name        TEXT COLLATE "C",
    picture     TEXT
);
CREATE INDEX users_env ON users(env, created_at);
CREATE INDEX users_created ON users(created_at, uid);

-- One WeChat identity: the openid a Mini Program (appid) knows the user by.
CREATE TABLE identities (
    env         TEXT NOT NULL,
    appid       TEXT NOT NULL,
    openid      TEXT COLLATE "C" NOT NULL,
    unionid     TEXT,
    uid         TEXT COLLATE "C" NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (env, appid, openid)
);
CREATE INDEX identities_uid ON identities(uid);

-- A session family: every refresh token descended from one sign-in. Revoking the
-- family ends the session (sign-out, or reuse of a rotated refresh token).
CREATE TABLE families (
    id          TEXT PRIMARY KEY,
    uid         TEXT COLLATE "C" NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    env         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX families_uid ON families(uid);

CREATE TABLE refresh_tokens (
    hash             BYTEA PRIMARY KEY,
    family           TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    successor_hash   BYTEA,
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

-- Short-lived, single-use results of provider/token (a code2Session exchange).
CREATE TABLE provider_tokens (
    hash        BYTEA PRIMARY KEY,
    env         TEXT NOT NULL,
    appid       TEXT NOT NULL,
    openid      TEXT NOT NULL,
    unionid     TEXT,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX provider_tokens_expires ON provider_tokens(expires_at);

-- Single-use wx.login codes of the WeChat emulator. On SQLite they live in the one
-- server's memory; with several instances on one database a code minted by one must
-- be redeemable (once) on any other.
CREATE TABLE wechat_codes (
    hash        BYTEA PRIMARY KEY,
    appid       TEXT NOT NULL,
    openid      TEXT NOT NULL,
    unionid     TEXT,
    -- The WeChat errcode its exchange answers instead (fault injection), if any.
    fault       BIGINT,
    -- Unix milliseconds: code lifetimes may be shorter than a second in tests.
    expires_at_ms BIGINT NOT NULL,
    used        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX wechat_codes_expires ON wechat_codes(expires_at_ms);

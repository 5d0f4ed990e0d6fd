-- The access-token signing keys (Ed25519), shared by every server on this store: the
-- SQLite store's signing_keys table (migrations/0003_signing_keys.sql) in PostgreSQL
-- types. The private key is sealed under the key-encryption key, which is never in the
-- database.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    public_key      BYTEA NOT NULL,
    sealed_private  BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    active_from     BIGINT NOT NULL,
    retired_at      BIGINT
);

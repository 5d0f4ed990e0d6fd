-- The access-token signing keys (Ed25519), shared by every server on this store.
-- The private key is sealed: XChaCha20-Poly1305 under the key-encryption key (which is
-- never in the database), 24-byte nonce first, the kid as associated data. A key signs
-- from `active_from` (after a publication delay, so every server publishes it in its
-- JWKS first) until `retired_at`; it stays in the JWKS for one access-token lifetime
-- after that, so every token it signed verifies until it expires.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY NOT NULL,
    public_key      BLOB NOT NULL,
    sealed_private  BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    active_from     INTEGER NOT NULL,
    retired_at      INTEGER
);

-- The `file` key provider's keyring when nodes share this database: one row
-- per key (the JWT signing key, each KEK version), each sealed by the root
-- key that every node holds and the database never does (AES-256-GCM under
-- an AAD naming the entry). Rows are only added, or removed when a KEK is
-- destroyed; never changed.
CREATE TABLE keyring (
    name        TEXT COLLATE "C" PRIMARY KEY,
    sealed      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Strongroom schema, SQLite flavour. Times are microseconds since the Unix
-- epoch (UTC); ids are hyphenated UUID text; subjects are "user:<uuid>" or
-- "agent:<uuid>".

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    email          TEXT NOT NULL UNIQUE,
    display_name   TEXT,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE vaults (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    kek_ref          TEXT NOT NULL,     -- the KEK new versions are wrapped under
    kek_version      INTEGER NOT NULL,  -- its newest version
    kek_provider     TEXT NOT NULL,     -- the key provider holding it
    pending_kek_ref  TEXT,              -- a migration's target KEK, until it completes
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX vaults_org ON vaults(org_id);

-- One row per (vault, path): the head of the version chain.
CREATE TABLE secrets (
    id              TEXT PRIMARY KEY,
    vault_id        TEXT NOT NULL REFERENCES vaults(id),
    path            TEXT NOT NULL,
    latest_version  INTEGER NOT NULL,
    deleted_at      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (vault_id, path)
);

-- One row per version: the envelope and its metadata. Never a plaintext.
CREATE TABLE secret_versions (
    secret_id         TEXT NOT NULL REFERENCES secrets(id),
    version           INTEGER NOT NULL,
    vault_id          TEXT NOT NULL,
    path              TEXT NOT NULL,
    type              TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    expires_at        INTEGER,
    max_access_count  INTEGER,
    access_count      INTEGER NOT NULL DEFAULT 0,
    disabled          INTEGER NOT NULL DEFAULT 0,
    envelope_version  INTEGER NOT NULL,
    ciphertext        BLOB NOT NULL,
    iv                BLOB NOT NULL,
    auth_tag          BLOB NOT NULL,
    wrapped_dek       BLOB NOT NULL,
    kek_ref           TEXT NOT NULL,
    kek_version       INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (secret_id, version)
) WITHOUT ROWID;
CREATE INDEX secret_versions_vault ON secret_versions(vault_id);

-- The audit log: one hash chain per organisation (see docs/audit.md).
CREATE TABLE audit_events (
    org_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT NOT NULL,     -- UUIDv7; not indexed: every append would pay for it
    actor_type      TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    details         TEXT NOT NULL,
    ip_address      TEXT,
    created_at      INTEGER NOT NULL,
    prev_event_id   TEXT,
    integrity_hash  TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;
-- No secondary indexes: each one would add a page write to every audited
-- request. Queries by time or actor scan one organisation's chain.

-- Signed statements of a chain head.
CREATE TABLE audit_checkpoints (
    org_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    head_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    kid         TEXT NOT NULL,
    signature   TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

-- Pending invitations: signing up with an invited email joins that organisation.
CREATE TABLE invitations (
    email       TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    role        TEXT NOT NULL,
    invited_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Agents. The API key is stored only as HMAC-SHA256(pepper, key) plus a
-- lookup prefix; scopes and vault_ids are JSON arrays.
CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES orgs(id),
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    auth_method         TEXT NOT NULL,
    scopes              TEXT NOT NULL,
    vault_ids           TEXT NOT NULL,
    token_ttl_seconds   INTEGER,
    expires_at          INTEGER,
    api_key_expires_at  INTEGER,
    is_active           INTEGER NOT NULL,
    key_prefix          TEXT NOT NULL UNIQUE,
    key_hash            BLOB NOT NULL,
    ssh_public_key      TEXT,
    ecdh_public_key     TEXT,
    extra               TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX agents_org ON agents(org_id);

-- Personal API keys (1ck_…), stored like agent keys.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_prefix  TEXT NOT NULL UNIQUE,
    key_hash    BLOB NOT NULL,
    scopes      TEXT NOT NULL,
    is_active   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- Vault policies (grants).
CREATE TABLE policies (
    id                   TEXT PRIMARY KEY,
    vault_id             TEXT NOT NULL REFERENCES vaults(id),
    secret_path_pattern  TEXT NOT NULL,
    principal_type       TEXT NOT NULL,
    principal_id         TEXT NOT NULL,
    permissions          TEXT NOT NULL,
    conditions           TEXT NOT NULL,
    expires_at           INTEGER,
    effect               TEXT NOT NULL,
    priority             INTEGER NOT NULL,
    extra                TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX policies_principal ON policies(vault_id, principal_type, principal_id);

-- Revoked token ids, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

-- Server-wide settings (e.g. the API-key pepper, wrapped by a provider KEK).
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

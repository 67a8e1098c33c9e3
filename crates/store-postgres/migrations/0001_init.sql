-- Strongroom schema, PostgreSQL flavour: the same tables as SQLite's three
-- migrations leave, plus the audit intake and chain heads that let many nodes
-- append to one chain. Times are microseconds since the Unix epoch (UTC); ids
-- are hyphenated UUID text; subjects are "user:<uuid>" or "agent:<uuid>".
-- Text that is compared or ordered uses the "C" collation (byte order, as
-- SQLite and Rust compare), whatever the database's locale.

CREATE TABLE orgs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT COLLATE "C" PRIMARY KEY,
    org_id         TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    email          TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name   TEXT,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX users_org ON users(org_id);

CREATE TABLE vaults (
    id               TEXT COLLATE "C" PRIMARY KEY,
    org_id           TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    kek_ref          TEXT NOT NULL,
    kek_version      BIGINT NOT NULL,
    kek_provider     TEXT NOT NULL,
    pending_kek_ref  TEXT,
    created_by       TEXT NOT NULL,
    kind             TEXT NOT NULL DEFAULT 'standard',
    created_at       BIGINT NOT NULL
);
CREATE INDEX vaults_org ON vaults(org_id);
CREATE UNIQUE INDEX vaults_one_agent_keys ON vaults(org_id) WHERE kind = 'agent_keys';

-- One row per (vault, path): the head of the version chain. A new version is
-- allocated by a compare-and-set on `latest_version`.
CREATE TABLE secrets (
    id              TEXT COLLATE "C" PRIMARY KEY,
    vault_id        TEXT COLLATE "C" NOT NULL REFERENCES vaults(id),
    path            TEXT COLLATE "C" NOT NULL,
    latest_version  BIGINT NOT NULL,
    deleted_at      BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (vault_id, path)
);

-- One row per version: the envelope and its metadata. Never a plaintext.
CREATE TABLE secret_versions (
    secret_id         TEXT COLLATE "C" NOT NULL REFERENCES secrets(id),
    version           BIGINT NOT NULL,
    vault_id          TEXT COLLATE "C" NOT NULL,
    path              TEXT COLLATE "C" NOT NULL,
    type              TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    expires_at        BIGINT,
    max_access_count  BIGINT,
    access_count      BIGINT NOT NULL DEFAULT 0,
    disabled          BOOLEAN NOT NULL DEFAULT false,
    envelope_version  BIGINT NOT NULL,
    ciphertext        BYTEA NOT NULL,
    iv                BYTEA NOT NULL,
    auth_tag          BYTEA NOT NULL,
    wrapped_dek       BYTEA NOT NULL,
    kek_ref           TEXT NOT NULL,
    kek_version       BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    deleted_at        BIGINT,
    PRIMARY KEY (secret_id, version)
);
CREATE INDEX secret_versions_vault ON secret_versions(vault_id);

-- The audit log: one hash chain per organisation (see docs/audit.md).
CREATE TABLE audit_events (
    org_id          TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    id              TEXT NOT NULL,
    actor_type      TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    details         TEXT NOT NULL,
    ip_address      TEXT,
    created_at      BIGINT NOT NULL,
    prev_event_id   TEXT,
    integrity_hash  TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

-- Audit records committed with the change they record but not yet linked
-- into their chain. A sequencer (any node, one at a time per organisation:
-- it holds the chain head's row lock) moves them into `audit_events` in
-- order, usually within milliseconds (docs/operations/postgres.md).
CREATE TABLE audit_intake (
    n               BIGSERIAL PRIMARY KEY,
    org_id          TEXT COLLATE "C" NOT NULL,
    id              TEXT NOT NULL,
    actor_type      TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    details         TEXT NOT NULL,
    ip_address      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_intake_org ON audit_intake(org_id, n);

-- The newest linked event of each chain: what the next one links to. Its
-- row lock serializes the linking of one organisation's events.
CREATE TABLE audit_heads (
    org_id    TEXT COLLATE "C" PRIMARY KEY,
    seq       BIGINT NOT NULL,
    event_id  TEXT,
    hash      TEXT NOT NULL
);

-- Signed statements of a chain head.
CREATE TABLE audit_checkpoints (
    org_id      TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
    head_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    kid         TEXT NOT NULL,
    signature   TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

-- Pending invitations, one per (organisation, email); the token is stored
-- only as HMAC-SHA256(pepper, token).
CREATE TABLE invitations (
    org_id      TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    email       TEXT COLLATE "C" NOT NULL,
    role        TEXT NOT NULL,
    invited_by  TEXT NOT NULL,
    token_hash  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, email)
);
CREATE INDEX invitations_email ON invitations(email);

-- Agents. The API key is stored only as HMAC-SHA256(pepper, key) plus a
-- lookup prefix; scopes and vault_ids are JSON arrays (text).
CREATE TABLE agents (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    org_id              TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    auth_method         TEXT NOT NULL,
    scopes              TEXT NOT NULL,
    vault_ids           TEXT NOT NULL,
    token_ttl_seconds   BIGINT,
    expires_at          BIGINT,
    api_key_expires_at  BIGINT,
    is_active           BOOLEAN NOT NULL,
    key_prefix          TEXT COLLATE "C" NOT NULL UNIQUE,
    key_hash            BYTEA NOT NULL,
    ssh_public_key      TEXT,
    ecdh_public_key     TEXT,
    extra               TEXT NOT NULL,
    token_generation    BIGINT NOT NULL DEFAULT 0,
    created_by          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX agents_org ON agents(org_id);

-- Personal API keys (1ck_…), stored like agent keys.
CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL,
    org_id      TEXT COLLATE "C" NOT NULL,
    name        TEXT NOT NULL,
    key_prefix  TEXT COLLATE "C" NOT NULL UNIQUE,
    key_hash    BYTEA NOT NULL,
    scopes      TEXT NOT NULL,
    is_active   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- Vault policies (grants).
CREATE TABLE policies (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    vault_id             TEXT COLLATE "C" NOT NULL REFERENCES vaults(id),
    secret_path_pattern  TEXT NOT NULL,
    principal_type       TEXT NOT NULL,
    principal_id         TEXT COLLATE "C" NOT NULL,
    permissions          TEXT NOT NULL,
    conditions           TEXT NOT NULL,
    expires_at           BIGINT,
    effect               TEXT NOT NULL,
    priority             BIGINT NOT NULL,
    extra                TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX policies_principal ON policies(vault_id, principal_type, principal_id);

-- Revoked token ids, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT COLLATE "C" PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

-- Server-wide settings (e.g. the API-key pepper, wrapped by a provider KEK).
CREATE TABLE settings (
    name   TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT NOT NULL
);

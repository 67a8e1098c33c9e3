-- Invitations belong to one organisation and are accepted with their own
-- secret. Each organisation keeps its own pending invitation for an email, so
-- another organisation inviting the same email can't replace it; signing up
-- joins only the organisation whose token is presented. The token (inv_…) is
-- stored only as HMAC-SHA256(pepper, token), like API keys.
--
-- Invitations pending before this migration had no token, so nobody could
-- ever accept them: they are dropped (the inviter invites again).
DROP TABLE invitations;
CREATE TABLE invitations (
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    email       TEXT NOT NULL,     -- lower-cased
    role        TEXT NOT NULL,
    invited_by  TEXT NOT NULL,
    token_hash  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, email)
);
CREATE INDEX invitations_email ON invitations(email);

-- Deleting a secret deletes the versions it had: each version records when it
-- was deleted, so a later write (a new live version) doesn't bring them back.
ALTER TABLE secret_versions ADD COLUMN deleted_at INTEGER;
UPDATE secret_versions
   SET deleted_at = (SELECT s.deleted_at FROM secrets s WHERE s.id = secret_versions.secret_id)
 WHERE secret_id IN (SELECT id FROM secrets WHERE deleted_at IS NOT NULL);

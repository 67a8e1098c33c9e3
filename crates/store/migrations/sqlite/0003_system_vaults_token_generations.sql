-- Issue 10: the agent-keys vault belongs to the server, and agent tokens end
-- when the agent's key is rotated or the agent deactivated.

-- What a vault is for: 'standard', or 'agent_keys' (one per organisation,
-- created by the server, `created_by = 'system'`).
ALTER TABLE vaults ADD COLUMN kind TEXT NOT NULL DEFAULT 'standard';

-- Earlier builds found the agent-keys vault by name, taking the oldest vault
-- called `__agent-keys`; that one becomes the server's (whoever created it
-- loses the creator's bypass on it).
UPDATE vaults SET kind = 'agent_keys', created_by = 'system'
 WHERE id IN (
    SELECT (SELECT w.id FROM vaults w
             WHERE w.org_id = v.org_id AND w.name = '__agent-keys'
             ORDER BY w.created_at, w.rowid LIMIT 1)
    FROM (SELECT DISTINCT org_id FROM vaults WHERE name = '__agent-keys') v
 );
CREATE UNIQUE INDEX vaults_one_agent_keys ON vaults(org_id) WHERE kind = 'agent_keys';

-- Tokens carry the generation they were issued under; a rotation or a
-- deactivation moves it on.
ALTER TABLE agents ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;

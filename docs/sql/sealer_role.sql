-- The access-log sealer's database role, applied by `xinyi db roles` (or `xinyi db upgrade
-- --apply-roles`) as the owner role, after production_roles.sql, when XINYI_SEALER_DB_ROLE
-- (default xinyi_sealer) exists or XINYI_SEALER_DB_PASSWORD is set to create it; :app_role
-- here is the sealer's role name. The worker's sealer connects as it through
-- XINYI_SEALER_DATABASE_URL.
--
-- It reads the access log and writes, append-only, the seals, the Merkle tree's nodes and
-- the signed tree heads; nothing else may write those (the app role may only read them). It
-- reads the audit signing key (creating it on first use) and adds the hourly
-- transparency.tree_head event to the outbox. It may not UPDATE, DELETE or TRUNCATE anything.

REVOKE ALL ON SCHEMA public FROM :app_role;
GRANT USAGE ON SCHEMA public TO :app_role;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :app_role;
GRANT SELECT ON access_log, access_log_seals, merkle_nodes, tree_heads, signing_keys TO :app_role;
GRANT INSERT ON access_log_seals, merkle_nodes, tree_heads, signing_keys, outbox_events TO :app_role;

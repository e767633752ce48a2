-- Production database roles for xinyi+, applied by `xinyi db roles` (or
-- `xinyi db upgrade --apply-roles`, the compose stack's migrate step) as the owner role, after
-- the migrations. That command creates or updates the app role (LOGIN, its password from
-- XINYI_APP_DB_PASSWORD, no other attribute) and then runs these statements, replacing
-- :app_role by its name. Every statement is idempotent: run it again after each upgrade, so
-- that tables a new migration added are granted too.
--
-- The API and worker connect as the app role (xinyi_app). It reads and writes rows and does
-- nothing else: no DDL (it owns nothing and may not create in the schema; temporary tables,
-- which the bulk import stages its chunks in, stay allowed). The access log (查询使用登记) is
-- append-only for it: it may INSERT and SELECT but never UPDATE, DELETE or TRUNCATE log rows
-- or checkpoints, so even a compromised app cannot rewrite who read a citizen's data. The
-- tombstones of closed accounts (shredded_subjects) are append-only for it in the same way.
-- Migrations run as the owner role, never as the app role.
--
-- By hand: psql -v app_role=xinyi_app -f production_roles.sql (once the role exists).

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM :app_role;
GRANT USAGE ON SCHEMA public TO :app_role;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :app_role;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :app_role;
REVOKE UPDATE, DELETE, TRUNCATE ON access_log, audit_checkpoints, shredded_subjects FROM :app_role;
-- The seals, the Merkle tree and its signed heads are written by the sealer role alone
-- (docs/sql/sealer_role.sql): the app only reads them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON access_log_seals, merkle_nodes, tree_heads FROM :app_role;

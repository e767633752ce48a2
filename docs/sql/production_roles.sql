-- Production database roles for xinyi+. Run as the database owner after `xinyi db upgrade`.
-- The API and worker connect as xinyi_app. The access log (查询使用登记) is append-only for
-- that role: it may INSERT and SELECT but never UPDATE, DELETE or TRUNCATE log rows or
-- checkpoints, so even a compromised app cannot rewrite who read a citizen's data.
-- Migrations run as the owner role (xinyi_owner), never as xinyi_app.
-- :app_role is a psql variable, e.g.  psql -v app_role=xinyi_app -f production_roles.sql

GRANT USAGE ON SCHEMA public TO :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :app_role;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :app_role;
REVOKE UPDATE, DELETE, TRUNCATE ON access_log, audit_checkpoints FROM :app_role;

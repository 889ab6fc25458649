-- Row-level security as defence in depth. Tenant-scoped store methods run each
-- transaction as the NOLOGIN role agentd_tenant with agentd.tenant_id set to the caller's
-- tenant (Store::begin_scoped); the policies below then hide and refuse every other
-- tenant's rows even where a query forgets its `tenant_id` filter.
--
-- RLS is enabled but not forced, so the connecting user (who owns the tables) bypasses
-- it: the deliberately cross-tenant paths (queue claim, completion and reaper, credential
-- lookup before a tenant is known, signup, worker tokens) run as that user.

-- Roles are cluster-wide, and several databases of one cluster may migrate at the same
-- time (replicas of different deployments, parallel tests): a concurrent creator shows up
-- as duplicate_object or as unique_violation on the catalog index.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentd_tenant') THEN
        CREATE ROLE agentd_tenant NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The connecting user must be able to SET ROLE to it; a superuser always can. From
-- PostgreSQL 16 membership alone is not enough (a CREATEROLE creator is an admin of the
-- role without the SET option), so ask for SET there.
DO $$
DECLARE
    can_set boolean;
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        can_set := pg_has_role(current_user, 'agentd_tenant', 'SET');
    ELSE
        can_set := pg_has_role(current_user, 'agentd_tenant', 'MEMBER');
    END IF;
    IF NOT can_set THEN
        GRANT agentd_tenant TO CURRENT_USER;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO agentd_tenant', current_schema());
END
$$;

-- What tenant-scoped methods do; no access at all to users, worker_tokens and
-- schema_migrations. The tenant row itself is read-only to a tenant.
GRANT SELECT ON tenants TO agentd_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON memberships, api_keys, sessions, agents, agent_versions, invocations, invocation_events
    TO agentd_tenant;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants TO agentd_tenant
    USING (id = current_setting('agentd.tenant_id', true))
    WITH CHECK (id = current_setting('agentd.tenant_id', true));

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memberships TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agents TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

ALTER TABLE agent_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_versions TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

ALTER TABLE invocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invocations TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

ALTER TABLE invocation_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invocation_events TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

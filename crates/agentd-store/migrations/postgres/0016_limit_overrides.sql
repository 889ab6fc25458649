-- A tenant keeps only its own values for limits (overrides); every other limit is the
-- platform's default from the running server's settings, so a change of AGENTD_LIMITS_*
-- reaches every tenant without an override. The limits copied at signup were copies of
-- the defaults of the day: they become "no override".
ALTER TABLE tenants RENAME COLUMN limits TO limit_overrides;
UPDATE tenants SET limit_overrides = '{}';
-- The claim's concurrency limit: the override alone (NULL: the default, bound by the claim).
ALTER TABLE tenants DROP COLUMN max_concurrent;
ALTER TABLE tenants ADD COLUMN max_concurrent_override BIGINT;

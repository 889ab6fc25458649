-- Blob garbage collection (docs/SCALING.md, "Blob garbage collection").
--
-- A writer marks a digest here, in a transaction of its own, before it puts the bytes in
-- the blob store; the row that will refer to the blob commits afterwards. The sweep
-- leaves a digest alone while its mark is younger than the grace period, so a blob is
-- never deleted between its write and the commit of its row. No tenant_id: blobs are
-- content-addressed across tenants, and only the cross-tenant sweep reads this.
CREATE TABLE blob_writes (
    digest     TEXT PRIMARY KEY,
    written_at BIGINT NOT NULL
);

-- When the agent of a version was deleted. Such versions stay while a run of theirs is
-- unfinished and for the grace period after the deletion (an invoke that read the agent
-- before the deletion may still be committing); then the sweep deletes them.
ALTER TABLE agent_versions ADD COLUMN agent_deleted_at BIGINT;
CREATE INDEX agent_versions_deleted ON agent_versions (agent_deleted_at);

-- The sweep asks "does any row still refer to this digest?" for each candidate.
CREATE INDEX agent_versions_digest ON agent_versions (digest);
CREATE INDEX agent_versions_dependencies_archive ON agent_versions (dependencies_archive);
CREATE INDEX invocation_artifacts_digest ON invocation_artifacts (digest);
CREATE INDEX dependency_builds_archive ON dependency_builds (archive_digest);
CREATE INDEX invocations_version ON invocations (version_id);

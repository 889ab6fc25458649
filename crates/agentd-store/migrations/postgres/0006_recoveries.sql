-- Attempts that ran again because the platform failed them (a lost worker, a sandbox
-- that would not start). They do not count against max_attempts.
ALTER TABLE invocations ADD COLUMN recoveries BIGINT NOT NULL DEFAULT 0;

-- Wrong passwords in a row per account, and until when its logins are refused: after 5,
-- each further failure doubles the wait (1 s, 2 s, 4 s, … at most 15 min). A success
-- resets both.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_locked_until INTEGER;

-- Fewer B-trees written per sign-in (as SQLite's 0005_lean_user_indexes).
-- users_env (env, created_at) serves no query: nothing lists users of one env by age.
DROP INDEX users_env;
-- The console's nickname search only ever looks up a nickname, so users without one
-- (every anonymous sign-in) need no entry.
DROP INDEX users_name;
CREATE INDEX users_name ON users(name, uid) WHERE name IS NOT NULL;

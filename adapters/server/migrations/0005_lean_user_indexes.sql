-- Fewer B-trees written per sign-in.
-- users_env (env, created_at) serves no query: nothing lists users of one env by age.
DROP INDEX users_env;
-- The console's nickname search only ever looks up a nickname, so users without one
-- (every anonymous sign-in) need no entry: each used to cost a write to a random leaf.
DROP INDEX users_name;
CREATE INDEX users_name ON users(name, uid) WHERE name IS NOT NULL;

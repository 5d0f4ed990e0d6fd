-- The user's own profile fields, set with PATCH user/profile (NULL: never set).
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN picture TEXT;

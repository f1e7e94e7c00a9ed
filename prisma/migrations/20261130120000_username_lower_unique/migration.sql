-- Usernames unique regardless of case, enforced by the database itself: the application's check-then-insert let
-- concurrent registrations of case variants ("Alice", "alice") all succeed. Prisma's schema cannot express an
-- index on lower(username) and its diff ignores expression indexes, so this one lives here only (no drift).
-- (No semicolon inside a statement: the PostgreSQL driver adapter splits migration scripts on them.)

-- Case variants an earlier race created: the oldest keeps its name, each later one is renamed
-- "<name>-<first 8 hex of its id>" (still a valid username) so the index can be built.
UPDATE "users" AS u SET "username" = left(u."username", 55) || '-' || left(u."id"::text, 8)
WHERE EXISTS (
    SELECT 1 FROM "users" AS o
    WHERE lower(o."username") = lower(u."username")
      AND (o."created_at" < u."created_at" OR (o."created_at" = u."created_at" AND o."id" < u."id"))
);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_lower_key" ON "users" (lower("username"));

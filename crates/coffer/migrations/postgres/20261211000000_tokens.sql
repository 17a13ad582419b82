-- Access tokens of `coffer serve`: a scope (read, write, admin), the keys
-- they reach (a prefix) and an expiry. The secret itself is never stored,
-- only its SHA-256; an S3 access key's secret key derives from the
-- server's key. A revoked token keeps its row, so its name stays in the
-- audit log's sense.

CREATE TABLE tokens (
    name          TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,    -- hex SHA-256 of the bearer secret
    access_key    TEXT UNIQUE,             -- S3 access key id (tokens made with --s3)
    scope         TEXT NOT NULL,           -- 'read', 'write' or 'admin'
    prefix        TEXT NOT NULL,           -- '' reaches every key
    created_at    BIGINT NOT NULL,         -- microseconds since the Unix epoch
    created_by    TEXT NOT NULL,
    expires_at    BIGINT,                  -- NULL: never
    revoked_at    BIGINT                   -- NULL: in force
);

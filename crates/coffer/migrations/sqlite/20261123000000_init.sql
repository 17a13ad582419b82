-- The foundation schema: blobs with reference counts, versions, latest
-- pointers and the audit log. Kept to SQL that PostgreSQL also accepts
-- (BIGINT, BOOLEAN, TEXT), so its folder can hold the same change.

-- Content-addressed blobs. A row exists only while a version references it.
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    md5        TEXT NOT NULL,
    size       BIGINT NOT NULL,
    locator    TEXT NOT NULL,          -- path on the backend
    refcount   BIGINT NOT NULL CHECK (refcount > 0),
    created_at BIGINT NOT NULL         -- microseconds since the Unix epoch
);

-- Every version of every key, delete markers included. Rows are never updated.
CREATE TABLE versions (
    key              TEXT NOT NULL,
    version_id       TEXT NOT NULL,
    is_delete_marker BOOLEAN NOT NULL,
    blob_sha256      TEXT REFERENCES blobs (sha256),
    size             BIGINT NOT NULL,
    etag             TEXT,
    content_type     TEXT,
    metadata         TEXT NOT NULL,    -- JSON object of user metadata
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    PRIMARY KEY (key, version_id),
    CHECK (is_delete_marker = (blob_sha256 IS NULL))
);
CREATE INDEX versions_by_blob ON versions (blob_sha256);

-- The current version of each key: always the key's greatest version id.
CREATE TABLE latest (
    key              TEXT PRIMARY KEY,
    version_id       TEXT NOT NULL,
    is_delete_marker BOOLEAN NOT NULL,
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id)
);
CREATE INDEX latest_live_keys ON latest (key) WHERE NOT is_delete_marker;

-- Every change, written in the same transaction as the change.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    key        TEXT,
    version_id TEXT,
    detail     TEXT NOT NULL           -- JSON object
);
CREATE INDEX audit_by_key ON audit (key, id);

-- Audit rows cannot be altered or removed through SQL either.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only');
END;

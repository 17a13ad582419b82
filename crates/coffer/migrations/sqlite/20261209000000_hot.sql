-- The hot store. Small content is committed with its version, its bytes in
-- hot_content (sealed in an encrypted store), and written to the backend
-- later by the flusher; a version whose manifest is not on the backend yet
-- is a row of hot_pending. A hot copy stays after it is flushed, and reads
-- are served from it, until expiry drops it (only once flushed). Both go
-- with the row they belong to.

CREATE TABLE hot_content (
    sha256    TEXT PRIMARY KEY REFERENCES blobs (sha256) ON DELETE CASCADE,
    content   BLOB NOT NULL,
    stored_at BIGINT NOT NULL,         -- microseconds since the Unix epoch
    flushed   BOOLEAN NOT NULL         -- the bytes are durable on the backend
);
CREATE INDEX hot_content_unflushed ON hot_content (stored_at) WHERE NOT flushed;
CREATE INDEX hot_content_by_age ON hot_content (stored_at) WHERE flushed;

CREATE TABLE hot_pending (
    key        TEXT NOT NULL,
    version_id TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (key, version_id),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);
CREATE INDEX hot_pending_by_age ON hot_pending (at);

-- Version management: tags and comments on versions, damaged blobs, and
-- indexes for history and audit queries; the same change as the SQLite
-- folder's file of this name.

-- Key=value tags on a version; they go with the version.
CREATE TABLE version_tags (
    key        TEXT COLLATE "C" NOT NULL,
    version_id TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (key, version_id, name),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);

-- Comments on a version, in the order they were made.
CREATE TABLE version_comments (
    key        TEXT COLLATE "C" NOT NULL,
    version_id TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (key, version_id, seq),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);

-- Set by `verify --repair` when a blob's bytes are missing or wrong: reads of
-- its versions fail at once, and storing the same content again heals it.
ALTER TABLE blobs ADD COLUMN damaged TEXT;

CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX audit_by_actor ON audit (actor, id);

-- Bundles: the resources one fetch run brings together (a primary URL and
-- what it leads to), stored as a directory of objects or as one zip object,
-- and completed once. A completed bundle cannot be aborted; an open one
-- lists its resources as they are stored.

CREATE TABLE bundles (
    bundle_id         TEXT PRIMARY KEY,    -- time-ordered: sorts by creation
    storage_key       TEXT NOT NULL,       -- <prefix>bundles/<id>/ or its resources.zip
    layout            TEXT NOT NULL,       -- 'directory' or 'zip'
    unzip             BOOLEAN NOT NULL,    -- gzip and zip resources are expanded
    primary_url       TEXT,
    recipe_id         TEXT,
    meta              TEXT NOT NULL,       -- JSON object given at start
    created_at        BIGINT NOT NULL,     -- microseconds since the Unix epoch
    created_by        TEXT NOT NULL,
    completed_at      BIGINT,              -- NULL while open
    metadata          TEXT,                -- JSON object given at completion
    version_id        TEXT,                -- the zip object's version (zip layout)
    callbacks_pending BOOLEAN NOT NULL     -- completed, its callbacks not yet run
);
CREATE INDEX bundles_open ON bundles (created_at) WHERE completed_at IS NULL;
CREATE INDEX bundles_callbacks ON bundles (bundle_id) WHERE callbacks_pending;

CREATE TABLE bundle_resources (
    bundle_id    TEXT NOT NULL REFERENCES bundles (bundle_id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,          -- 1, 2, ... in the order stored
    name         TEXT NOT NULL,            -- its path inside the bundle
    url          TEXT NOT NULL,
    content_type TEXT,
    status_code  BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    key          TEXT,                     -- the object holding it, when one does
    version_id   TEXT,
    data_offset  BIGINT,                   -- zip layout: where its data starts in the zip,
    stored_size  BIGINT,                   -- how many bytes it takes there,
    deflated     BOOLEAN,                  -- and whether they are deflated
    added_at     BIGINT NOT NULL,
    PRIMARY KEY (bundle_id, position),
    UNIQUE (bundle_id, name)
);

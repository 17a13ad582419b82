-- What an S3 client keeps beside its objects. A bucket is a key's first
-- segment; one made empty (CreateBucket) is recorded here until it holds
-- keys or is deleted. A multipart upload's parts are staged on the backend
-- under parts/<upload_id>/ and recorded here until the upload is completed
-- (one version, made like any put's) or aborted.

CREATE TABLE buckets (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,            -- microseconds since the Unix epoch
    created_by TEXT NOT NULL
);

CREATE TABLE multipart_uploads (
    upload_id    TEXT PRIMARY KEY,         -- time-ordered, like a version id
    key          TEXT NOT NULL,
    content_type TEXT,
    metadata     TEXT NOT NULL,            -- JSON object of user metadata
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL
);
CREATE INDEX multipart_uploads_key ON multipart_uploads (key, upload_id);

CREATE TABLE multipart_parts (
    upload_id   TEXT NOT NULL REFERENCES multipart_uploads (upload_id) ON DELETE CASCADE,
    part_number BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    etag        TEXT NOT NULL,             -- hex MD5 of the part's bytes
    path        TEXT NOT NULL,             -- where the part is staged
    data_key    TEXT,                      -- its wrapped data key, in an encrypted store
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

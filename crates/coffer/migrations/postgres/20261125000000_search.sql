-- Full-text search: one document per version that is not a delete marker,
-- built in Rust (`search_document`: lowercased words joined by single spaces)
-- and written, as a tsvector of exactly those words with their positions, in
-- the same transaction as the change that alters it. PostgreSQL's own parser
-- never sees the text, so both catalogs index the same words. The same
-- change as the SQLite folder's file of this name.

CREATE TABLE version_search (
    key        TEXT COLLATE "C" NOT NULL,
    version_id TEXT COLLATE "C" NOT NULL,
    document   tsvector NOT NULL,
    PRIMARY KEY (key, version_id),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);
CREATE INDEX version_search_words ON version_search USING GIN (document);

-- Versions still without a document. SQL cannot build one, so the catalog
-- builds them when it connects, in batches, and empties this table.
CREATE TABLE search_backfill (
    key        TEXT COLLATE "C" NOT NULL,
    version_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key, version_id),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);
INSERT INTO search_backfill (key, version_id) SELECT key, version_id FROM versions WHERE NOT is_delete_marker;

-- Full-text search: one document per version that is not a delete marker,
-- built in Rust (`search_document`: lowercased words joined by single spaces)
-- and written in the same transaction as the change that alters it.

-- A stable id for each version's document. It is an INTEGER PRIMARY KEY, which
-- VACUUM keeps, unlike the implicit rowid of `versions`. The document goes with
-- its version (the cascade below, then the trigger).
CREATE TABLE search_docs (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL,
    version_id TEXT NOT NULL,
    UNIQUE (key, version_id),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);

-- The documents' words, indexed by `search_docs.id`. The text itself is not
-- kept (contentless). The `ascii` tokenizer splits only at ASCII characters
-- that are not letters or digits, so on our documents, which hold nothing else
-- but spaces, its tokens are exactly the words Rust made, in every script
-- (`unicode61` would split again inside words at vowel signs, for example).
-- Positions stay (the default `detail = full`): bm25 counts a word's
-- occurrences through them, and scores every match 0 without.
CREATE VIRTUAL TABLE search_fts USING fts5 (
    document,
    content = '',
    contentless_delete = 1,
    tokenize = 'ascii'
);

CREATE TRIGGER search_docs_remove AFTER DELETE ON search_docs
BEGIN
    DELETE FROM search_fts WHERE rowid = old.id;
END;

-- Versions still without a document. SQL cannot build one, so the catalog
-- builds them when it opens, in batches, and empties this table.
CREATE TABLE search_backfill (
    key        TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (key, version_id),
    FOREIGN KEY (key, version_id) REFERENCES versions (key, version_id) ON DELETE CASCADE
);
INSERT INTO search_backfill (key, version_id) SELECT key, version_id FROM versions WHERE NOT is_delete_marker;

-- Encryption at rest. A blob of an encrypted store carries its data key,
-- wrapped by the store's key-encryption key (two wrappings while a key
-- rotation runs), as JSON; NULL in a store without encryption. Settings of
-- the store as a whole (its encryption, a key rotation under way, the last
-- one) are rows of store_settings, values as JSON. The same change in both
-- catalogs' folders.

ALTER TABLE blobs ADD COLUMN data_key TEXT;

CREATE TABLE store_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

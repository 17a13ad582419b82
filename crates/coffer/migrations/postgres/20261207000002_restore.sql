-- A restore asked for a blob's archived content (S3 GLACIER, Azure Archive)
-- and not yet seen done: what was asked, as JSON (key, version, when, who,
-- days, speed); NULL when none is pending. Long-running processes poll the
-- pending ones and fire object.restored when one completes. The same change
-- in both catalogs' folders.

ALTER TABLE blobs ADD COLUMN restore_pending TEXT;
-- Polls read the pending ones without scanning every blob.
CREATE INDEX blobs_restore_pending ON blobs (sha256) WHERE restore_pending IS NOT NULL;

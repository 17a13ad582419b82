-- Where a blob's content was last put by a tier move, a lifecycle transition
-- or a put's storage class: `cold` (the cold tier) or a storage class / access
-- tier name; NULL while it is where a put leaves it. Lifecycle plans read it
-- to move content once. The same change in both catalogs' folders.

ALTER TABLE blobs ADD COLUMN placement TEXT;

-- Retention and legal hold per version (S3 Object Lock's semantics). The
-- catalog's plans refuse every removal of a protected version with a clear
-- message; these triggers are the last line behind them, for stray SQL: a
-- version under legal hold, or under a compliance retention that is still in
-- force, cannot be deleted, and such a retention cannot be shortened,
-- relaxed or removed. (Governance retention needs the plans: a trigger
-- cannot tell a bypass. Nothing here stops the database's owner, who can
-- drop triggers.) The same change as the PostgreSQL folder's file of this name.

ALTER TABLE versions ADD COLUMN retention_mode TEXT
    CHECK (retention_mode IS NULL OR retention_mode IN ('governance', 'compliance'));
ALTER TABLE versions ADD COLUMN retain_until BIGINT;     -- microseconds since the Unix epoch
ALTER TABLE versions ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TRIGGER versions_protected_delete BEFORE DELETE ON versions
WHEN OLD.legal_hold
  OR (OLD.retention_mode = 'compliance' AND OLD.retain_until > CAST(unixepoch('subsec') * 1000000 AS INTEGER))
BEGIN
    SELECT RAISE(ABORT, 'version is protected by a legal hold or a compliance retention');
END;

CREATE TRIGGER versions_compliance_kept BEFORE UPDATE OF retention_mode, retain_until ON versions
WHEN OLD.retention_mode = 'compliance' AND OLD.retain_until > CAST(unixepoch('subsec') * 1000000 AS INTEGER)
  AND (NEW.retention_mode IS NOT 'compliance' OR NEW.retain_until IS NULL OR NEW.retain_until < OLD.retain_until)
BEGIN
    SELECT RAISE(ABORT, 'a compliance retention in force can only be extended');
END;

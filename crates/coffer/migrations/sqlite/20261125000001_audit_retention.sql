-- Audit retention: `coffer audit purge` may remove audit rows older than the
-- configured retention; nothing else may remove or change any audit row.
--
-- A trigger cannot know who is deleting, so the purge declares itself: inside
-- its transaction it inserts its cutoff into `audit_purge_guard`, deletes, and
-- removes the guard row again before it commits, so no other transaction ever
-- sees a guard row. The trigger lets a delete through only while a guard row
-- exists and only for a row older than the guard's cutoff: even the purge
-- cannot remove a row younger than it declared. (This guards against mistakes
-- and stray SQL, not against the database's owner, who can drop triggers.)
-- PostgreSQL does the same with a trigger reading a `SET LOCAL` setting.

CREATE TABLE audit_purge_guard (
    before BIGINT NOT NULL              -- microseconds since the Unix epoch
);

DROP TRIGGER audit_no_delete;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
WHEN NOT EXISTS (SELECT 1 FROM audit_purge_guard g WHERE OLD.at < g.before)
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only (only an audit purge removes rows older than its cutoff)');
END;

-- Audit retention: `coffer audit purge` may remove audit rows older than the
-- configured retention; nothing else may remove or change any audit row. The
-- same change as the SQLite folder's file of this name.
--
-- A trigger cannot know who is deleting, so the purge declares itself: inside
-- its transaction it runs `SET LOCAL coffer.audit_purge_before = '<micros>'`,
-- which ends with the transaction. The trigger lets a delete through only
-- while that setting is there and only for a row older than it: even the
-- purge cannot remove a row younger than it declared. (This guards against
-- mistakes and stray SQL, not against the database's owner, who can drop
-- triggers.)

CREATE FUNCTION audit_delete_only_by_purge() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cutoff TEXT := current_setting('coffer.audit_purge_before', true);
BEGIN
    IF cutoff IS NULL OR cutoff = '' OR OLD.at >= cutoff::BIGINT THEN
        RAISE EXCEPTION 'audit rows are append-only (only an audit purge removes rows older than its cutoff)';
    END IF;
    RETURN OLD;
END;
$$;

DROP TRIGGER audit_no_delete ON audit;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_delete_only_by_purge();

-- Retention and legal hold per version (S3 Object Lock's semantics). The
-- catalog's plans refuse every removal of a protected version with a clear
-- message; these triggers are the last line behind them, for stray SQL: a
-- version under legal hold, or under a compliance retention that is still in
-- force, cannot be deleted, and such a retention cannot be shortened,
-- relaxed or removed. (Governance retention needs the plans: a trigger
-- cannot tell a bypass. Nothing here stops the database's owner, who can
-- drop triggers.) The same change as the SQLite folder's file of this name.

ALTER TABLE versions ADD COLUMN retention_mode TEXT
    CHECK (retention_mode IS NULL OR retention_mode IN ('governance', 'compliance'));
ALTER TABLE versions ADD COLUMN retain_until BIGINT;     -- microseconds since the Unix epoch
ALTER TABLE versions ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;

CREATE FUNCTION versions_protected() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_micros BIGINT := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    in_force BOOLEAN := OLD.retention_mode = 'compliance' AND OLD.retain_until > now_micros;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.legal_hold OR in_force THEN
            RAISE EXCEPTION 'version is protected by a legal hold or a compliance retention';
        END IF;
        RETURN OLD;
    END IF;
    IF in_force AND (NEW.retention_mode IS DISTINCT FROM 'compliance' OR NEW.retain_until IS NULL
                     OR NEW.retain_until < OLD.retain_until) THEN
        RAISE EXCEPTION 'a compliance retention in force can only be extended';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER versions_protected BEFORE DELETE OR UPDATE OF retention_mode, retain_until ON versions
    FOR EACH ROW EXECUTE FUNCTION versions_protected();

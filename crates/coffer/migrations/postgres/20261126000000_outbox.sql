-- Integration hooks: the outbox every change writes its events into (in the
-- change's own transaction), the hooks, one delivery row per event and hook,
-- and per-hook counters. The same change as the SQLite folder's file of this
-- name, but for its dispatcher lease: here dispatchers share the deliveries
-- by row locks (FOR UPDATE SKIP LOCKED) and may run side by side.

-- Events in the order they were written. A dispatcher "fans out" each event
-- once: it adds a delivery for every hook whose filter matches, then marks it.
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,   -- the CloudEvents id
    type       TEXT NOT NULL,
    key        TEXT COLLATE "C",       -- the subject
    at         BIGINT NOT NULL,        -- microseconds since the Unix epoch
    payload    TEXT NOT NULL,          -- the CloudEvents JSON document
    fanned_out BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbox_to_fan_out ON outbox (id) WHERE NOT fanned_out;
CREATE INDEX outbox_by_key ON outbox (key, id);

CREATE TABLE hooks (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,         -- the hook as JSON (secrets included: back the catalog up with care)
    first_event BIGINT NOT NULL        -- the first outbox id the hook receives
);

-- `due_at` is when a pending delivery may next be tried; while a dispatcher
-- holds it (`claimed_by`), it is when the claim runs out and another may take it.
CREATE TABLE hook_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    hook        TEXT NOT NULL REFERENCES hooks (name) ON DELETE CASCADE,
    event       BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts    INT NOT NULL DEFAULT 0,
    due_at      BIGINT NOT NULL,
    claimed_by  TEXT,
    last_error  TEXT,
    finished_at BIGINT,
    UNIQUE (hook, event)
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (due_at) WHERE state = 'pending';
CREATE INDEX hook_deliveries_event ON hook_deliveries (event);

-- Attempt counters and a latency histogram per hook (kept when old events are purged).
CREATE TABLE hook_stats (
    hook         TEXT PRIMARY KEY,
    executed     BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    total_micros BIGINT NOT NULL DEFAULT 0,
    histogram    TEXT NOT NULL DEFAULT '[]'  -- counts per latency bucket, as a JSON array
);

-- Counters of the outbox itself: `events_fanned_out`.
CREATE TABLE outbox_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO outbox_counters (name, value) VALUES ('events_fanned_out', 0);


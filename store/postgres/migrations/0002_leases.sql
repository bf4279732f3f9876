-- Leases: work one replica does at a time (delivering the outbox). The
-- token (a fencing number) grows at every change of holder; a holder checks
-- it where it records the work, so that one paused past its lease cannot
-- act after another took over.
CREATE TABLE leases (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    token      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Responder's schema, version 1. Documents are the same JSON the bbolt
-- backend keeps, as json (kept as written: jsonb refuses \u0000, which a
-- webhook may carry); the columns beside them are what the indexes need.
-- Keys that come from outside (dedup keys, fingerprints, kinds,
-- idempotency keys) are bytea: text refuses a NUL byte.

CREATE TABLE responder_counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
-- Incident numbers come from a row, not a sequence: a rolled-back write
-- gives its number back, so ids stay gapless (INC-1, INC-2, ...).
INSERT INTO responder_counters (name, value) VALUES ('incident', 0);

CREATE TABLE incidents (
    num       bigint PRIMARY KEY,
    source    text   NOT NULL,
    dedup_key bytea  NOT NULL,
    status    text   NOT NULL,
    severity  text   NOT NULL,
    doc       json   NOT NULL
);
CREATE INDEX incidents_by_dedup ON incidents (source, dedup_key, num DESC);
-- One open incident per source and dedup key: two replicas that receive the
-- same group at once cannot both open one (the second write fails and is
-- run again, and then finds the first's).
CREATE UNIQUE INDEX incidents_open_by_dedup ON incidents (source, dedup_key)
    WHERE status <> 'resolved' AND dedup_key <> ''::bytea;
CREATE INDEX incidents_open ON incidents (num DESC) WHERE status <> 'resolved';

CREATE TABLE alerts (
    incident    bigint NOT NULL,
    fingerprint bytea  NOT NULL,
    doc         json   NOT NULL,
    PRIMARY KEY (incident, fingerprint)
);

CREATE TABLE timeline (
    id       bigserial PRIMARY KEY,
    incident bigint    NOT NULL,
    doc      json      NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline (incident, id);

CREATE TABLE unmatched (
    key bytea       PRIMARY KEY,
    at  timestamptz NOT NULL,
    doc json        NOT NULL
);

CREATE SEQUENCE intent_seq;
CREATE TABLE intents (
    seq      bigint  PRIMARY KEY,
    incident bigint  NOT NULL,
    pending  boolean NOT NULL,
    doc      json    NOT NULL
);
CREATE INDEX intents_pending ON intents (seq) WHERE pending;
CREATE INDEX intents_by_incident ON intents (incident, seq);

CREATE TABLE resolved_kinds (
    kind           bytea  PRIMARY KEY,
    first_incident bigint NOT NULL
);

CREATE TABLE requests (
    key bytea PRIMARY KEY,
    doc json  NOT NULL
);

-- Follow-up action items of incidents, and stored post-mortems with every
-- version kept.
INSERT INTO responder_counters (name, value) VALUES ('action_item', 0);
CREATE TABLE action_items (
    num      bigint  PRIMARY KEY,
    incident bigint  NOT NULL,
    open     boolean NOT NULL,
    owner    text    NOT NULL,
    doc      json    NOT NULL
);
CREATE INDEX action_items_by_incident ON action_items (incident, num);
CREATE INDEX action_items_open ON action_items (num) WHERE open;

CREATE TABLE postmortems (
    incident bigint PRIMARY KEY,
    doc      json   NOT NULL
);
CREATE TABLE postmortem_versions (
    incident bigint  NOT NULL,
    version  integer NOT NULL,
    doc      json    NOT NULL,
    PRIMARY KEY (incident, version)
);

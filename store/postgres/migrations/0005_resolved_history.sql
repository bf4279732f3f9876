-- Every resolved incident of each kind (resolved_kinds keeps only the
-- first), so that a drill is compared with the earlier drills of its
-- scenario. It starts with the first incident of each kind, all that was
-- kept before.
CREATE TABLE resolved_history (
    kind     bytea  NOT NULL,
    incident bigint NOT NULL,
    PRIMARY KEY (kind, incident)
);
INSERT INTO resolved_history (kind, incident) SELECT kind, first_incident FROM resolved_kinds;

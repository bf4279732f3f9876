-- The dead-man's switch: each heartbeat's last ping, kept across restarts.
CREATE TABLE heartbeats (
    name bytea PRIMARY KEY,
    doc  json  NOT NULL
);

-- Web sessions across replicas: the key that signs every replica's session
-- cookies (made once), and the sessions logged out, each refused until it
-- would have expired.
CREATE TABLE web_secrets (
    name  text  PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE web_logouts (
    id    text        PRIMARY KEY,
    until timestamptz NOT NULL
);

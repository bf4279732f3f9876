-- Each incident's runbook checklist, beside its document (which every
-- alert joining rewrites) rather than in it.
CREATE TABLE checklists (
    incident bigint PRIMARY KEY,
    doc      json   NOT NULL
);

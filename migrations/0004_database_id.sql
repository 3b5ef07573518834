-- A random id of this database, shown by /healthz: `status` compares it with its own database's
-- to tell whether the service answering on HTTP_PORT is the one that serves this database.
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(8))));

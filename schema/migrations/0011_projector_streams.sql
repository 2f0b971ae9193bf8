-- The projector folds trace records and metric records on two streams, each with its own
-- connection and cursor, so that a backlog of one kind never waits behind the other and both
-- use a core of PostgreSQL. A cursor row is now keyed by (wal_id, stream); an existing cursor
-- becomes the starting point of both streams. The WAL may trim only what every stream has
-- projected (the server takes the least of them).
ALTER TABLE projector_cursors ADD COLUMN stream TEXT NOT NULL DEFAULT 'traces';
ALTER TABLE projector_cursors DROP CONSTRAINT projector_cursors_pkey;
INSERT INTO projector_cursors (wal_id, stream, seq, updated_at)
SELECT wal_id, 'metrics', seq, updated_at FROM projector_cursors;
ALTER TABLE projector_cursors ALTER COLUMN stream DROP DEFAULT;
ALTER TABLE projector_cursors ADD PRIMARY KEY (wal_id, stream);

-- Each stream counts the records it quarantined; earlier ones are counted once, by traces.
ALTER TABLE projector_quarantine ADD COLUMN stream TEXT NOT NULL DEFAULT 'traces';
ALTER TABLE projector_quarantine ALTER COLUMN stream DROP DEFAULT;

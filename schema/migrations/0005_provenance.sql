-- Which record last changed a row: the WAL it came from and its sequence number there. The
-- projector skips an update from a record at or below that sequence of the same WAL, so
-- re-applying records (a retry, a replayed range) leaves every row as it was.
ALTER TABLE traces ADD COLUMN src_wal UUID, ADD COLUMN src_seq BIGINT;
ALTER TABLE observations ADD COLUMN src_wal UUID, ADD COLUMN src_seq BIGINT;

-- Records PostgreSQL rejected even after sanitizing: kept whole (the WAL record bytes) with the
-- error, so they can be inspected and, once fixed, replayed. Their neighbours are projected.
CREATE TABLE projector_quarantine (
  wal_id         UUID        NOT NULL,
  seq            BIGINT      NOT NULL,
  sqlstate       TEXT,
  error          TEXT        NOT NULL,
  record         BYTEA       NOT NULL,
  quarantined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (wal_id, seq)
);

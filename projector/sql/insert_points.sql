-- Metric points in bulk, when the plain COPY found some already stored (a resend, a replay).
-- The caller deduplicates and sorts them by key (the first of equal keys in record order wins);
-- ON CONFLICT DO NOTHING makes a point already stored a no-op, and RETURNING yields only the
-- points this statement inserted, so a resend never counts twice in the rollups.
--
-- $1 int8[]         series_id  }
-- $2 timestamptz[]  ts         }  one element per point
-- $3 float8[]       value      }
--
-- Returns the inserted points: series_id (int8), ts_us (int8, microseconds since the epoch),
-- value (float8).
INSERT INTO metric_points (series_id, ts, value)
SELECT u.series_id, u.ts, u.value
FROM unnest($1::int8[], $2::timestamptz[], $3::float8[]) AS u(series_id, ts, value)
ON CONFLICT (series_id, ts) DO NOTHING
RETURNING series_id, (EXTRACT(EPOCH FROM ts) * 1000000)::int8 AS ts_us, value

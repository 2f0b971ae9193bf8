-- The stored rollup cells a chunk's points fall into, to be merged with them in C++. Cells not
-- stored yet are simply absent.
--
-- $1 int8[]  series_id  }
-- $2 int4[]  step       }  one element per cell; bucket_s: the bucket's start in seconds since
-- $3 int8[]  bucket_s   }  the epoch
--
-- Returns series_id (int8), step (int4), bucket_s (int8), count (int8), sum, min, max, last
-- (float8), last_us (int8, microseconds since the epoch), sketch (bytea).
SELECT r.series_id, r.step, k.bucket_s, r.count, r.sum, r.min, r.max, r.last,
       (EXTRACT(EPOCH FROM r.last_ts) * 1000000)::int8 AS last_us, r.sketch
FROM unnest($1::int8[], $2::int4[], $3::int8[]) AS k(series_id, step, bucket_s)
JOIN metric_rollups r ON r.series_id = k.series_id AND r.step = k.step
  AND r.bucket = 'epoch'::timestamptz + k.bucket_s * interval '1 second'

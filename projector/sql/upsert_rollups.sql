-- Writes merged rollup cells back: each cell as the caller computed it from the stored cell
-- (select_rollups.sql) and the chunk's points, replacing the stored one.
--
-- $1  int8[]         series_id  }
-- $2  int4[]         step       }
-- $3  int8[]         bucket_s   }  one element per cell; bucket_s: the bucket's start in
-- $4  int8[]         count      }  seconds since the epoch; sketch: common/sketch.hpp's
-- $5  float8[]       sum        }  encoding
-- $6  float8[]       min        }
-- $7  float8[]       max        }
-- $8  float8[]       last       }
-- $9  timestamptz[]  last_ts    }
-- $10 bytea[]        sketch     }
INSERT INTO metric_rollups AS r (series_id, step, bucket, count, sum, min, max, last, last_ts,
                                 sketch)
SELECT u.series_id, u.step, 'epoch'::timestamptz + u.bucket_s * interval '1 second', u.count,
       u.sum, u.min, u.max, u.last, u.last_ts, u.sketch
FROM unnest($1::int8[], $2::int4[], $3::int8[], $4::int8[], $5::float8[], $6::float8[],
            $7::float8[], $8::float8[], $9::timestamptz[], $10::bytea[])
     AS u(series_id, step, bucket_s, count, sum, min, max, last, last_ts, sketch)
ON CONFLICT (series_id, step, bucket) DO UPDATE SET
  count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
  last = EXCLUDED.last, last_ts = EXCLUDED.last_ts, sketch = EXCLUDED.sketch

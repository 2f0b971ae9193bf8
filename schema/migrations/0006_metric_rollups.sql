-- Step rollups of metric points: per series and step (60, 300, 3600, 86400 s) and bucket, the
-- count, sum, min, max, last value (with its timestamp) and a mergeable quantile sketch.
--
-- The sketch is a DDSketch-style map from logarithmic bucket keys to counts, with relative
-- accuracy 1%: positive values v go to key ceil(log_γ v) with γ = 1.01/0.99, negative ones to
-- 'n' || ceil(log_γ |v|), and |v| < 1e-9 to 'z'. Any value in key i lies within 1% of
-- 2γ^i/(γ+1), the estimate a reader returns, so a quantile read from the sketch is within 1% of
-- the exact one. Two sketches merge by adding counts per key.
--
-- Rollups are updated in the transaction that inserts points, from the points actually
-- inserted (ON CONFLICT DO NOTHING … RETURNING): a resent or replayed point is never counted
-- twice. (The projector computes the keys itself, with common/sketch.hpp; xtrace_sketch_key is the
-- same rule in SQL, kept for ad-hoc queries.)

CREATE FUNCTION xtrace_sketch_key(v DOUBLE PRECISION) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN abs(v) < 1e-9 THEN 'z'
              WHEN v > 0 THEN ceil(ln(v) / ln(1.01 / 0.99))::int::text
              ELSE 'n' || ceil(ln(-v) / ln(1.01 / 0.99))::int::text END
$$;

CREATE FUNCTION xtrace_sketch_merge(a JSONB, b JSONB) RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $$
  SELECT COALESCE(jsonb_object_agg(k, total), '{}'::jsonb)
  FROM (SELECT k, sum(v::bigint) AS total
        FROM (SELECT * FROM jsonb_each_text(COALESCE(a, '{}'::jsonb))
              UNION ALL
              SELECT * FROM jsonb_each_text(COALESCE(b, '{}'::jsonb))) AS e(k, v)
        GROUP BY k) AS s
$$;

CREATE TABLE metric_rollups (
  project_id TEXT             NOT NULL,
  series_id  BIGINT           NOT NULL,
  step       INTEGER          NOT NULL,
  bucket     TIMESTAMPTZ      NOT NULL,
  count      BIGINT           NOT NULL,
  sum        DOUBLE PRECISION NOT NULL,
  min        DOUBLE PRECISION NOT NULL,
  max        DOUBLE PRECISION NOT NULL,
  last       DOUBLE PRECISION NOT NULL,
  last_ts    TIMESTAMPTZ      NOT NULL,
  sketch     JSONB            NOT NULL,
  PRIMARY KEY (project_id, series_id, step, bucket)
);

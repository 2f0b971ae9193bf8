-- Series ids of metric series identities the projector's cache does not know: each identity is
-- created on first sight, else its stored id is read. The final SELECT's snapshot predates the
-- INSERT, so existing series come from metric_series and new ones from `created`.
--
-- $1 text[]   project_id  }
-- $2 text[]   environment }  one element per identity: the identity as stored, labels as a
-- $3 text[]   name        }  JSON object in key order
-- $4 jsonb[]  labels      }
--
-- Returns one row per input element: n (its 1-based position in the arrays), id (int8).
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY
    AS u(project_id, environment, name, labels, n)),
created AS (
  INSERT INTO metric_series (project_id, environment, name, labels)
  SELECT DISTINCT project_id, environment, name, labels FROM input
  ON CONFLICT (project_id, environment, name, labels) DO NOTHING
  RETURNING id, project_id, environment, name, labels)
SELECT i.n, COALESCE(c.id, s.id) AS id
FROM input i
LEFT JOIN created c ON (c.project_id, c.environment, c.name, c.labels)
                     = (i.project_id, i.environment, i.name, i.labels)
LEFT JOIN metric_series s ON (s.project_id, s.environment, s.name, s.labels)
                           = (i.project_id, i.environment, i.name, i.labels)

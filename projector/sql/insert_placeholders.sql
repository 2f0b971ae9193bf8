-- Placeholder traces for the traces that observations name before the trace itself arrives;
-- the real trace later replaces the placeholder's timestamp and environment. Of several
-- observations naming the same trace, the first in record order decides. An existing trace is
-- left alone.
--
-- $1 text[]         project_id   }
-- $2 text[]         id           }  one element per observation, in record order; ts: the
-- $3 timestamptz[]  ts           }  observation's start time, else the record's receive time
-- $4 text[]         environment  }
INSERT INTO traces (project_id, id, "timestamp", placeholder, environment)
SELECT DISTINCT ON (project_id, id) project_id, id, ts, TRUE, environment
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY
     AS u(project_id, id, ts, environment, n)
ORDER BY project_id, id, n
ON CONFLICT (project_id, id) DO NOTHING

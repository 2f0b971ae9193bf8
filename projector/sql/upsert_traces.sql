-- One wave of trace events (trace_fold.cpp): every trace appears at most once. Traces not stored
-- yet are inserted as the event makes them; stored ones are merged with the merge rules (docs/
-- api.md): an absent value keeps the stored one, metadata deep-merges, tags union, and the
-- timestamp and environment of a placeholder are replaced, those of a real trace kept.
--
-- The UPDATE runs on the statement's snapshot, so it sees only rows that existed before it: the
-- rows `inserted` adds are already as the event makes them, and are left out of the update.
-- An update from an event at or before the row's provenance (src_wal, src_seq) of the same WAL
-- is skipped (xtrace_event_is_newer), so re-applying a record changes nothing.
--
-- A new trace is written with the aggregates of the observations already stored for it (the
-- wave's observations go in first), computed by xtrace_observation_stats as refresh_derived.sql
-- computes them: the refresh then finds them current and leaves the fresh row alone.
--
-- $1  text[]         project_id   }
-- $2  text[]         id           }
-- $3  timestamptz[]  ts           }  one element per trace event; NULL: absent from the event.
-- $4  timestamptz[]  received     }  received: the record's receive time, the timestamp of a
-- $5  text[]         environment  }  trace sent without one. tags: a JSON array of strings.
-- $6  text[]         name         }  src_wal, src_seq: the event's WAL and position
-- $7  text[]         user_id      }  (sequence << 20 | index in its record)
-- $8  text[]         session_id   }
-- $9  text[]         release      }
-- $10 text[]         version      }
-- $11 text[]         external_id  }
-- $12 jsonb[]        input        }
-- $13 jsonb[]        output       }
-- $14 jsonb[]        metadata     }
-- $15 jsonb[]        tags         }
-- $16 boolean[]      public       }
-- $17 boolean[]      bookmarked   }
-- $18 float8[]       latency      }
-- $19 float8[]       total_cost   }
-- $20 uuid[]         src_wal      }
-- $21 bigint[]       src_seq      }
WITH u AS MATERIALIZED (
  SELECT * FROM
  unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::jsonb[],
         $14::jsonb[], $15::jsonb[], $16::boolean[], $17::boolean[], $18::float8[], $19::float8[],
         $20::uuid[], $21::bigint[])
    AS u(project_id, id, ts, received, environment, name, user_id, session_id, release, version,
         external_id, input, output, metadata, tags, public, bookmarked, latency, total_cost,
         src_wal, src_seq)),
inserted AS (
  INSERT INTO traces (project_id, id, "timestamp", placeholder, environment, name, user_id,
    session_id, release, version, external_id, input, output, metadata, tags, public, bookmarked,
    latency, total_cost, src_wal, src_seq, obs_latency, obs_total_cost)
  SELECT u.project_id, u.id, COALESCE(u.ts, u.received), FALSE, u.environment, u.name, u.user_id,
    u.session_id, u.release, u.version, u.external_id, u.input, u.output, u.metadata,
    (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}') FROM jsonb_array_elements_text(u.tags) AS x),
    COALESCE(u.public, FALSE), COALESCE(u.bookmarked, FALSE), u.latency, u.total_cost,
    u.src_wal, u.src_seq, a.latency, a.total_cost
  FROM u
  LEFT JOIN LATERAL xtrace_observation_stats(u.project_id, u.id) AS a ON TRUE
  ON CONFLICT (project_id, id) DO NOTHING
  RETURNING project_id, id)
UPDATE traces AS t SET
  "timestamp"  = CASE WHEN t.placeholder THEN COALESCE(u.ts, u.received) ELSE t."timestamp" END,
  environment  = CASE WHEN t.placeholder THEN u.environment ELSE t.environment END,
  placeholder  = FALSE,
  name         = COALESCE(u.name, t.name),
  user_id      = COALESCE(u.user_id, t.user_id),
  session_id   = COALESCE(u.session_id, t.session_id),
  release      = COALESCE(u.release, t.release),
  version      = COALESCE(u.version, t.version),
  external_id  = COALESCE(u.external_id, t.external_id),
  input        = COALESCE(u.input, t.input),
  output       = COALESCE(u.output, t.output),
  metadata     = xtrace_jsonb_merge(t.metadata, u.metadata),
  tags         = CASE WHEN u.tags IS NULL THEN t.tags ELSE
                   (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}')
                    FROM (SELECT unnest(t.tags) UNION ALL
                          SELECT jsonb_array_elements_text(u.tags)) AS s(x)) END,
  public       = COALESCE(u.public, t.public),
  bookmarked   = COALESCE(u.bookmarked, t.bookmarked),
  latency      = COALESCE(u.latency, t.latency),
  total_cost   = COALESCE(u.total_cost, t.total_cost),
  src_wal      = u.src_wal,
  src_seq      = u.src_seq,
  updated_at   = now()
FROM (SELECT u.* FROM u
      WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.project_id = u.project_id AND i.id = u.id))
     AS u
WHERE t.project_id = u.project_id AND t.id = u.id
  AND xtrace_event_is_newer(t.src_wal, t.src_seq, u.src_wal, u.src_seq)

-- One wave of observation events (trace_fold.cpp): every observation appears at most once.
-- Observations not stored yet are inserted as the event makes them; stored ones are merged with
-- the merge rules (docs/api.md): an absent value keeps the stored one, metadata deep-merges, and
-- the first start time, project, environment and trace stay.
--
-- As in upsert_traces.sql, the UPDATE sees only rows that existed before the statement, and an
-- event at or before a row's provenance (src_wal, src_seq) of the same WAL changes nothing.
--
-- $1  text[]         project_id             }
-- $2  text[]         id                     }
-- $3  text[]         trace_id               }  one element per observation event; NULL:
-- $4  text[]         type                   }  absent from the event. src_wal, src_seq: the
-- $5  text[]         environment            }  event's WAL and position (sequence << 20 |
-- $6  text[]         name                   }  index in its record)
-- $7  timestamptz[]  start_time             }
-- $8  timestamptz[]  end_time               }
-- $9  timestamptz[]  completion_start_time  }
-- $10 text[]         model                  }
-- $11 jsonb[]        model_parameters       }
-- $12 jsonb[]        input                  }
-- $13 jsonb[]        output                 }
-- $14 jsonb[]        usage                  }
-- $15 jsonb[]        metadata               }
-- $16 text[]         level                  }
-- $17 text[]         status_message         }
-- $18 text[]         parent_observation_id  }
-- $19 text[]         prompt_id              }
-- $20 text[]         prompt_name            }
-- $21 text[]         prompt_version         }
-- $22 text[]         model_id               }
-- $23 float8[]       input_price            }
-- $24 float8[]       output_price           }
-- $25 float8[]       total_price            }
-- $26 float8[]       calculated_input_cost  }
-- $27 float8[]       calculated_output_cost }
-- $28 float8[]       calculated_total_cost  }
-- $29 float8[]       latency                }
-- $30 float8[]       time_to_first_token    }
-- $31 bigint[]       completion_tokens      }
-- $32 bigint[]       prompt_tokens          }
-- $33 bigint[]       total_tokens           }
-- $34 text[]         unit                   }
-- $35 uuid[]         src_wal                }
-- $36 bigint[]       src_seq                }
--
-- Returns, for every stored observation it changed, project_id (text) and trace_id (text): the
-- trace the observation is stored under, whose aggregates change with it (an observation keeps
-- the trace it was first recorded under, even when a later event names another).
WITH u AS MATERIALIZED (
  SELECT * FROM
  unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::jsonb[],
         $12::jsonb[], $13::jsonb[], $14::jsonb[], $15::jsonb[], $16::text[], $17::text[],
         $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::float8[],
         $24::float8[], $25::float8[], $26::float8[], $27::float8[], $28::float8[], $29::float8[],
         $30::float8[], $31::bigint[], $32::bigint[], $33::bigint[], $34::text[], $35::uuid[],
         $36::bigint[])
    AS u(project_id, id, trace_id, type, environment, name, start_time, end_time,
         completion_start_time, model, model_parameters, input, output, usage, metadata, level,
         status_message, parent_observation_id, prompt_id, prompt_name, prompt_version, model_id,
         input_price, output_price, total_price, calculated_input_cost, calculated_output_cost,
         calculated_total_cost, latency, time_to_first_token, completion_tokens, prompt_tokens,
         total_tokens, unit, src_wal, src_seq)),
inserted AS (
  INSERT INTO observations (project_id, id, trace_id, type, environment, name, start_time,
    end_time, completion_start_time, model, model_parameters, input, output, usage, metadata,
    level, status_message, parent_observation_id, prompt_id, prompt_name, prompt_version,
    model_id, input_price, output_price, total_price, calculated_input_cost,
    calculated_output_cost, calculated_total_cost, latency, time_to_first_token,
    completion_tokens, prompt_tokens, total_tokens, unit, src_wal, src_seq)
  SELECT u.project_id, u.id, u.trace_id, COALESCE(u.type, 'GENERATION'), u.environment, u.name,
    u.start_time, u.end_time, u.completion_start_time, u.model, u.model_parameters, u.input,
    u.output, u.usage, u.metadata, u.level, u.status_message, u.parent_observation_id,
    u.prompt_id, u.prompt_name, u.prompt_version, u.model_id, u.input_price, u.output_price,
    u.total_price, u.calculated_input_cost, u.calculated_output_cost, u.calculated_total_cost,
    u.latency, u.time_to_first_token, u.completion_tokens, u.prompt_tokens, u.total_tokens,
    u.unit, u.src_wal, u.src_seq
  FROM u
  ON CONFLICT (project_id, id) DO NOTHING
  RETURNING project_id, id)
UPDATE observations AS o SET
  type                   = COALESCE(u.type, o.type),
  name                   = COALESCE(u.name, o.name),
  start_time             = COALESCE(o.start_time, u.start_time),
  end_time               = COALESCE(u.end_time, o.end_time),
  completion_start_time  = COALESCE(u.completion_start_time, o.completion_start_time),
  model                  = COALESCE(u.model, o.model),
  model_parameters       = COALESCE(u.model_parameters, o.model_parameters),
  input                  = COALESCE(u.input, o.input),
  output                 = COALESCE(u.output, o.output),
  usage                  = COALESCE(u.usage, o.usage),
  metadata               = xtrace_jsonb_merge(o.metadata, u.metadata),
  level                  = COALESCE(u.level, o.level),
  status_message         = COALESCE(u.status_message, o.status_message),
  parent_observation_id  = COALESCE(u.parent_observation_id, o.parent_observation_id),
  prompt_id              = COALESCE(u.prompt_id, o.prompt_id),
  prompt_name            = COALESCE(u.prompt_name, o.prompt_name),
  prompt_version         = COALESCE(u.prompt_version, o.prompt_version),
  model_id               = COALESCE(u.model_id, o.model_id),
  input_price            = COALESCE(u.input_price, o.input_price),
  output_price           = COALESCE(u.output_price, o.output_price),
  total_price            = COALESCE(u.total_price, o.total_price),
  calculated_input_cost  = COALESCE(u.calculated_input_cost, o.calculated_input_cost),
  calculated_output_cost = COALESCE(u.calculated_output_cost, o.calculated_output_cost),
  calculated_total_cost  = COALESCE(u.calculated_total_cost, o.calculated_total_cost),
  latency                = COALESCE(u.latency, o.latency),
  time_to_first_token    = COALESCE(u.time_to_first_token, o.time_to_first_token),
  completion_tokens      = COALESCE(u.completion_tokens, o.completion_tokens),
  prompt_tokens          = COALESCE(u.prompt_tokens, o.prompt_tokens),
  total_tokens           = COALESCE(u.total_tokens, o.total_tokens),
  unit                   = COALESCE(u.unit, o.unit),
  src_wal                = u.src_wal,
  src_seq                = u.src_seq,
  updated_at             = now()
FROM (SELECT u.* FROM u
      WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.project_id = u.project_id AND i.id = u.id))
     AS u
WHERE o.project_id = u.project_id AND o.id = u.id
  AND xtrace_event_is_newer(o.src_wal, o.src_seq, u.src_wal, u.src_seq)
RETURNING o.project_id, o.trace_id::text AS trace_id

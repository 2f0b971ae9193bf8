-- Room on every traces page for the projector's follow-up updates of a trace it has just
-- written (derived latency and cost, from the observations of the same chunk). Those columns
-- are not indexed, so with free space on the page the update is heap-only (HOT) and touches no
-- index. Applies to pages written from now on.
ALTER TABLE traces SET (fillfactor = 80);

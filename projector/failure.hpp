#pragma once
// What a failure while applying a chunk means for the stream. PostgreSQL answers a statement with
// a SQLSTATE; its class (the first two characters) says whether the same statement could succeed
// later (the connection, the server's resources, a lock or an operator got in the way) or never
// will, because of the rows it was asked to write. Retrying the latter would halt the stream
// forever behind one record, so those records are isolated and quarantined instead.

#include <exception>
#include <string_view>

namespace xtrace::projector {

enum class FailureKind {
  kTransient,  // retry the same chunk later, after reconnecting
  kData,       // this chunk's rows are refused: isolate the record responsible
};

// Classes that say nothing about the rows: 08 connection, 0A feature not supported, 25
// transaction state (e.g. a read-only standby after a failover), 28 authorization, 3D/3F catalog
// and schema, 40 rollback (deadlock, serialization), 42 syntax or access rule (our statement or
// the schema is wrong, or a privilege was revoked: every record would fail alike, so quarantining
// them would empty the stream into quarantine), 53 insufficient resources (disk full, out of
// memory), 55 object state (lock not available), 57 operator intervention (statement timeout,
// shutdown), 58 system (I/O), F0 configuration file, P0 PL/pgSQL raise, XX internal. Every other
// class (22 data, 23 integrity, 54 program limit such as an index row over its size, 21
// cardinality ...) is blamed on the rows.
FailureKind ClassifySqlState(std::string_view sqlstate);

// Classifies any exception thrown by a chunk's statements: SQL errors by their SQLSTATE, a value
// PostgreSQL returned that we cannot convert as data, everything else (a broken connection, a
// client-side timeout) as transient.
FailureKind ClassifyFailure(const std::exception& e);

}  // namespace xtrace::projector

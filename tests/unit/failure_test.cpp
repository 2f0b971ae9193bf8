#include <gtest/gtest.h>

#include <pqxx/except>

#include "projector/failure.hpp"

namespace xtrace::projector {
namespace {

TEST(Failure, RowsAreBlamedOnlyForDataClasses) {
  // Refused because of the rows: isolate and quarantine the record.
  for (const char* state : {"22003", "22P02", "22P05", "23505", "23502", "54000", "21000"}) {
    EXPECT_EQ(ClassifySqlState(state), FailureKind::kData) << state;
  }
  // The server, the connection, a lock or an operator: retry the same chunk later.
  for (const char* state : {"08006", "25006", "28P01", "3D000", "40001", "40P01", "53100", "53200",
                            "55P03", "57014", "57P01", "58030", "F0000", "XX000"}) {
    EXPECT_EQ(ClassifySqlState(state), FailureKind::kTransient) << state;
  }
  EXPECT_EQ(ClassifySqlState(""), FailureKind::kTransient) << "no SQLSTATE: not the server's";
}

TEST(Failure, ExceptionsAreClassifiedByTheirSqlState) {
  EXPECT_EQ(ClassifyFailure(pqxx::sql_error("index row size exceeds maximum", "INSERT", "54000")),
            FailureKind::kData);
  EXPECT_EQ(ClassifyFailure(
                pqxx::sql_error("canceling statement due to statement timeout", "INSERT", "57014")),
            FailureKind::kTransient);
  EXPECT_EQ(ClassifyFailure(pqxx::broken_connection("server closed the connection")),
            FailureKind::kTransient);
  EXPECT_EQ(ClassifyFailure(pqxx::conversion_error("not a number")), FailureKind::kData);
  EXPECT_EQ(ClassifyFailure(std::runtime_error("client-side deadline")), FailureKind::kTransient);
}

}  // namespace
}  // namespace xtrace::projector

#include "support/pg.hpp"

#include <gtest/gtest.h>
#include <pqxx/connection>
#include <pqxx/nontransaction>

#include <cstdlib>
#include <fstream>
#include <random>

namespace xtrace::testing {

std::string ClusterUrl(const std::string& database) {
  const char* dir = std::getenv("XTRACE_TEST_PG_DIR");
  if (dir == nullptr) dir = XTRACE_TEST_PG_DIR_DEFAULT;
  std::ifstream port_file(std::string(dir) + "/port");
  std::string port;
  if (!(port_file >> port))
    throw std::runtime_error(std::string("no test PostgreSQL cluster in ") + dir +
                             " (ctest starts it: run the tests through ctest)");
  return "postgresql://postgres@127.0.0.1:" + port + "/" + database;
}

TestDatabase::TestDatabase() {
  std::random_device rd;
  name_ = "xt_test_" + std::to_string(rd()) + std::to_string(rd());
  pqxx::connection admin(ClusterUrl("postgres"));
  pqxx::nontransaction(admin).exec0("CREATE DATABASE " + name_);
  url_ = ClusterUrl(name_);
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(ClusterUrl("postgres"));
    pqxx::nontransaction(admin).exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot drop " << name_ << ": " << e.what();
  }
}

}  // namespace xtrace::testing

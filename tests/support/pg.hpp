#pragma once
// Throwaway databases on the test cluster that the ctest fixture `pg_cluster` starts
// (tools/pg-local.sh, directory in XTRACE_TEST_PG_DIR). Each TestDatabase is a fresh database,
// dropped when the object goes away.

#include <sys/types.h>

#include <string>
#include <vector>

namespace xtrace::testing {

// postgresql://… of the cluster's maintenance database; fails the test when there is none.
std::string ClusterUrl(const std::string& database);

class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string url_;
};

// A PostgreSQL cluster of the test's own (tools/pg-local.sh in a temporary directory), for
// tests that stop and start the database. Removed with the object.
class PrivateCluster {
 public:
  PrivateCluster();
  ~PrivateCluster();
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  const std::string& url() const { return url_; }
  void Stop();
  void Start();
  // SIGSTOP / SIGCONT every process of the cluster (postmaster and its children): a host that
  // stopped answering without closing a single connection. The destructor resumes a paused one.
  void Pause();
  void Resume();

 private:
  std::string dir_;
  std::vector<pid_t> paused_;
  std::string port_;
  std::string url_;
};

}  // namespace xtrace::testing

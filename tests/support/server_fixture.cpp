#include "support/server_fixture.hpp"

#include <boost/json/parse.hpp>

#include <iostream>

namespace xtrace::testing {

ServerFixture::ServerFixture(std::string token)
    : token_(std::move(token)),
      auth_{{"Authorization", "Bearer " + token_}},
      auth_json_{{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}} {}

std::map<std::string, std::string> ServerFixture::Env() const {
  std::map<std::string, std::string> env = {{"DATABASE_URL", db_.url()},
                                            {"API_BEARER_TOKEN", token_},
                                            {"XTRACE_WAL_DIR", wal_dir_.path() + "/wal"}};
  for (auto& [name, value] : ExtraEnv()) env[name] = value;
  return env;
}

void ServerFixture::SetUp() {
  server_ = std::make_unique<ServerProcess>(Env());
  ASSERT_TRUE(server_->Start()) << server_->Log();
}

void ServerFixture::TearDown() {
  if (HasFailure() && server_) std::cerr << "---- server log ----\n" << server_->Log();
}

HttpResult ServerFixture::Get(const std::string& target) const {
  return Http(server_->port(), "GET", target, "", auth_);
}

HttpResult ServerFixture::PostBatch(const std::string& body) const {
  return Http(server_->port(), "POST", "/v1/l/batch", body, auth_json_);
}

bool ServerFixture::WaitProjected(std::chrono::milliseconds timeout) const {
  return WaitUntil(
      [&] {
        const auto r = Get("/api/internal/status");
        if (r.status != 200) return false;
        const auto s = boost::json::parse(r.body);
        const auto last = s.at("wal").at("lastSequence").to_number<uint64_t>();
        return last > 0 && s.at("projector").at("projectedSequence").to_number<uint64_t>() == last;
      },
      timeout, std::chrono::milliseconds(20));
}

}  // namespace xtrace::testing

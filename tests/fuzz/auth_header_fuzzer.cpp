// server::Authenticate: the Authorization header of every protected request, including the
// base64 decoding of Basic credentials.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/auth.hpp"

namespace {

const xtrace::server::Credentials& Creds() {
  // "pk-lf-1:sk-lf-1" in base64 is cGstbGYtMTpzay1sZi0x; the seeds carry it.
  static const xtrace::server::Credentials creds{"token-1", "pk-lf-1", "sk-lf-1"};
  return creds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const auto result = xtrace::server::Authenticate(header, Creds());
  // Access is granted only for a recognized scheme, to the principal the rate limiter keys on.
  if (result.allowed) {
    using xtrace::server::AuthKind;
    if (result.kind == AuthKind::kNone) std::abort();
    if (result.kind == AuthKind::kBearer && result.principal != "bearer") std::abort();
    if (result.kind == AuthKind::kBasic && result.principal != "basic:pk-lf-1") std::abort();
  }

  // The decoder on its own, on the raw bytes: at most three bytes out per four in.
  if (const auto decoded = xtrace::server::DecodeBase64(header)) {
    if (decoded->size() * 4 > header.size() * 3) std::abort();
  }
  return 0;
}

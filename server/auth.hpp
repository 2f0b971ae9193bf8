#pragma once
// Credential checks for protected routes: `Authorization: Bearer <API_BEARER_TOKEN>` or
// `Basic base64(<public key>:<secret key>)`. Comparisons take time independent of where the
// candidate differs, so response timing does not reveal a secret's prefix.

#include <optional>
#include <string>
#include <string_view>

namespace xtrace::server {

struct Credentials {
  std::string bearer_token;
  std::optional<std::string> public_key;
  std::optional<std::string> secret_key;
};

enum class AuthKind { kNone, kBearer, kBasic };

struct AuthResult {
  bool allowed = false;
  AuthKind kind = AuthKind::kNone;  // what the header carried, valid or not
  std::string principal;            // rate-limit key: "bearer" or "basic:<public key>"
};

AuthResult Authenticate(std::string_view authorization_header, const Credentials& creds);

bool ConstantTimeEquals(std::string_view candidate, std::string_view secret);

// Standard base64 with padding; nullopt on any invalid character or length.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace xtrace::server

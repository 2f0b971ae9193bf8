#include "server/auth.hpp"

#include <cctype>
#include <cstdint>

namespace xtrace::server {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Authentication schemes are case-insensitive (RFC 7235 section 2.1).
bool HasScheme(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return false;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
  }
  return true;
}

}  // namespace

bool ConstantTimeEquals(std::string_view candidate, std::string_view secret) {
  // Runs over the secret's length whatever the candidate, and folds the length difference in.
  uint8_t diff = candidate.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i) {
    const char c = i < candidate.size() ? candidate[i] : 0;
    diff |= static_cast<uint8_t>(c ^ secret[i]);
  }
  return diff == 0 && !secret.empty();
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + static_cast<size_t>(j)];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else if (pad > 0 || (v[j] = Base64Value(c)) < 0) {
        return std::nullopt;
      }
    }
    const uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xFF));
  }
  return out;
}

AuthResult Authenticate(std::string_view header, const Credentials& creds) {
  header = Trim(header);
  AuthResult result;
  if (HasScheme(header, "bearer")) {
    result.kind = AuthKind::kBearer;
    result.principal = "bearer";
    result.allowed = ConstantTimeEquals(Trim(header.substr(7)), creds.bearer_token);
    return result;
  }
  if (HasScheme(header, "basic")) {
    result.kind = AuthKind::kBasic;
    const auto decoded = DecodeBase64(Trim(header.substr(6)));
    if (!decoded) return result;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return result;
    const std::string_view user = std::string_view(*decoded).substr(0, colon);
    const std::string_view password = std::string_view(*decoded).substr(colon + 1);
    result.principal = "basic:" + std::string(user);
    if (creds.public_key && creds.secret_key) {
      // Evaluate both comparisons: no early exit that would time the username check alone.
      const bool user_ok = ConstantTimeEquals(user, *creds.public_key);
      const bool password_ok = ConstantTimeEquals(password, *creds.secret_key);
      result.allowed = user_ok && password_ok;
    }
    return result;
  }
  return result;
}

}  // namespace xtrace::server

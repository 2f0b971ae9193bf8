#pragma once
// Repairs for values PostgreSQL would reject although the client's intent is clear: a NUL
// character, which neither text nor jsonb can hold, becomes U+FFFD (the replacement character).
// Records that still fail go to the quarantine table (projector.cpp).

#include <string>
#include <string_view>

namespace xtrace::projector {

// Raw text: NUL bytes become U+FFFD.
std::string SanitizeText(std::string_view text);

// Compact JSON text: `\u0000` escapes become `\ufffd` (an escaped backslash followed by "u0000"
// is literal text and stays as it is).
std::string SanitizeJson(std::string_view json);

}  // namespace xtrace::projector

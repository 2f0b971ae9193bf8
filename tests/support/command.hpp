#pragma once
// Runs a command line through the shell and captures stdout and stderr together.

#include <string>

namespace xtrace::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult RunCommand(const std::string& command_line);

}  // namespace xtrace::testing

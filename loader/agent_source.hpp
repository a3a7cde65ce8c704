// The agent's Python source, embedded at build time.
#pragma once

#include <string_view>

namespace pyhot::loader {

std::string_view agent_source();

}  // namespace pyhot::loader

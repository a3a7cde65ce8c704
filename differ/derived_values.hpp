// Internal to differ/: unchanged statements that read a name the patch runs
// again (values derived at import time from a re-run constant).
#pragma once

#include <vector>

#include "differ/differ.hpp"
#include "parser/source_file.hpp"

namespace pyhot::differ {

// Adds a re-run of every unchanged, unconditional `NAME = ...` below a
// re-run statement that reads a name it binds (transitively), and names in
// the re-run change's reason the other statements that read it and keep
// a value derived from the old one.
void add_derived_values(const parser::SourceFile& after, std::vector<Change>& changes);

}  // namespace pyhot::differ

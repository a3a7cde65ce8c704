// gtest printers for the parser's records, shared by the parser's unit
// tests: on a failed comparison gtest prints their fields, in order.
#pragma once

#include <gtest/gtest.h>

#include <ostream>

#include "parser/source_file.hpp"

namespace pyhot::parser {

template <typename T>
void print_fields(const T& record, std::ostream* out) {
  *out << ::testing::PrintToString(T::fields(record));
}
inline void PrintTo(const Range& range, std::ostream* out) { print_fields(range, out); }
inline void PrintTo(const Parameter& parameter, std::ostream* out) { print_fields(parameter, out); }
inline void PrintTo(const Definition& definition, std::ostream* out) { print_fields(definition, out); }
inline void PrintTo(const Statement& statement, std::ostream* out) { print_fields(statement, out); }
inline void PrintTo(const SyntaxError& error, std::ostream* out) { print_fields(error, out); }

}  // namespace pyhot::parser

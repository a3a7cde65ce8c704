// What the parser's unit tests share: gtest printers for its records (on a
// failed comparison gtest prints their fields, in order) and two helpers.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "parser/parser.hpp"
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

// The text parsed as t.py; a failed parse fails the test.
inline SourceFile parse(const std::string& text) {
  Result<SourceFile> file = parse_source(text, "t.py");
  EXPECT_TRUE(file.ok());
  return file.ok() ? std::move(file).value() : SourceFile{};
}

// The definition of that qualname; a missing one fails the test.
inline const Definition& get(const SourceFile& file, const std::string& qualname) {
  const Definition* definition = file.find(qualname);
  EXPECT_NE(definition, nullptr) << qualname;
  static const Definition k_missing;
  return definition != nullptr ? *definition : k_missing;
}

}  // namespace pyhot::parser

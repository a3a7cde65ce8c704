// libFuzzer harness over the parser: any bytes must parse without a crash
// or a sanitizer report, and the parser's two promises must hold for them:
// reparse_from() of an edit gives exactly what parse_source() gives, and
// deserialize(serialize(file)) is the same file.
//
// An input is one text, or two texts (before and after an edit) joined by
// k_edit_separator; the seed corpus (make_corpus.sh) pairs testdata's files.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "parser/parser.hpp"
#include "parser/serialize.hpp"

namespace {

constexpr std::string_view k_edit_separator = "\n#---pyhot-edit---\n";

[[noreturn]] void broken_promise(const char* what, std::string_view before, std::string_view after) {
  std::fprintf(stderr, "parser_fuzz: %s\n--- before (%zu bytes)\n%.*s\n--- after (%zu bytes)\n%.*s\n", what,
               before.size(), static_cast<int>(before.size()), before.data(), after.size(),
               static_cast<int>(after.size()), after.data());
  __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t split = input.find(k_edit_separator);
  std::string_view before = split == std::string_view::npos ? input : input.substr(0, split);
  std::string_view after = split == std::string_view::npos ? input : input.substr(split + k_edit_separator.size());

  auto parsed_before = pyhot::parser::parse_source(before);
  auto parsed_after = pyhot::parser::parse_source(after);
  if (!parsed_before || !parsed_after) {
    return 0;  // tree-sitter could not run (e.g. out of memory): not a parser defect
  }
  std::string expected = pyhot::parser::serialize(*parsed_after);
  auto reparsed = pyhot::parser::reparse_from(*parsed_before, after);
  if (!reparsed || pyhot::parser::serialize(*reparsed) != expected) {
    broken_promise("reparse_from differs from parse_source", before, after);
  }
  auto restored = pyhot::parser::deserialize(expected, std::string(after));
  if (!restored || pyhot::parser::serialize(*restored) != expected) {
    broken_promise("deserialize(serialize(file)) is another file", before, after);
  }
  return 0;
}

// Where a generator's or coroutine's own body stops running: its yield,
// yield from and await expressions and its async for / async with headers
// (for diagnostics that time a function only while it runs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace pyhot::parser {

struct Suspension {
  enum class Kind { yield, yield_from, await, async_for, async_with };
  Kind kind = Kind::yield;
  // yield, yield from, await: the whole expression; async for / with: the
  // iterable or context manager expression.
  std::uint32_t start_byte = 0;
  std::uint32_t end_byte = 0;
  // The operand of yield / yield from / await; both end_byte for a bare yield.
  std::uint32_t operand_start = 0;
  std::uint32_t operand_end = 0;
  int depth = 0;  // how many suspensions this one is inside
};

struct Suspensions {
  std::vector<Suspension> points;  // in source order
  // Not empty when a suspension cannot be wrapped: an await or async for
  // inside a comprehension (its own frame on Python < 3.12).
  std::string unsupported;
};

// The suspensions of the function whose `def` (or `async`) keyword is at
// def_byte of text, not counting those of nested functions, lambdas and
// classes.
Result<Suspensions> find_suspensions(std::string_view text, std::uint32_t def_byte);

}  // namespace pyhot::parser

// The parsed cache on disk: what it stores loads back as it was parsed, and
// an entry that is missing, truncated, empty or corrupt is only a miss.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "parser/parser.hpp"
#include "patch/parsed_cache.hpp"
#include "util/text.hpp"

namespace pyhot::patch {
namespace {

const std::string k_text =
    "import os\n\n\ndef f(x, y=1):\n    return x + y\n\n\nclass C:\n    def m(self):\n        return 2\n";

class ParsedCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_directory = std::filesystem::temp_directory_path() / ("pyhot-parsed-cache-test-" + std::to_string(getpid()));
    setenv("PYHOT_CACHE_DIR", m_directory.c_str(), 1);
  }
  void TearDown() override {
    std::filesystem::remove_all(m_directory);
    unsetenv("PYHOT_CACHE_DIR");
  }

  parser::SourceFile parsed() const {
    auto file = parser::parse_source(k_text, "/srv/app.py");
    EXPECT_TRUE(file.ok());
    return *file;
  }

  std::filesystem::path entry() const { return m_directory / (util::hash_hex(k_text) + ".parsed"); }

  std::string entry_bytes() const {
    std::ifstream in(entry(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  void write_entry(const std::string& bytes) const {
    std::ofstream out(entry(), std::ios::binary | std::ios::trunc);
    out << bytes;
  }

 private:
  std::filesystem::path m_directory;
};

TEST_F(ParsedCacheTest, WhatIsStoredLoadsBackByTextAndByHash) {
  ParsedCache().store(parsed());
  auto by_text = ParsedCache().load(k_text, "/srv/app.py");
  ASSERT_TRUE(by_text.has_value());
  EXPECT_EQ(*by_text, parsed());
  auto by_hash = ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/other.py");
  ASSERT_TRUE(by_hash.has_value());
  EXPECT_EQ(by_hash->text, k_text);
  EXPECT_EQ(by_hash->path, "/srv/other.py");
  EXPECT_EQ(by_hash->definitions, parsed().definitions);
}

TEST_F(ParsedCacheTest, AMissingEntryIsAMiss) {
  EXPECT_FALSE(ParsedCache().load(k_text, "/srv/app.py").has_value());
  EXPECT_FALSE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value());
}

TEST_F(ParsedCacheTest, AnEmptyTruncatedOrCorruptEntryIsAMiss) {
  ParsedCache().store(parsed());
  const std::string whole = entry_bytes();
  ASSERT_GT(whole.size(), 16U);
  for (std::size_t size : {std::size_t{0}, std::size_t{3}, std::size_t{8}, std::size_t{20}, whole.size() - 1}) {
    write_entry(whole.substr(0, size));
    EXPECT_FALSE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value()) << size;
  }
  for (std::size_t at : {std::size_t{2}, std::size_t{12}, whole.size() / 2, whole.size() - 3}) {
    std::string flipped = whole;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x20);
    write_entry(flipped);
    EXPECT_FALSE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value()) << at;
  }
  write_entry(whole);
  EXPECT_TRUE(ParsedCache().load_by_hash(util::hash_hex(k_text), "/srv/app.py").has_value());
}

}  // namespace
}  // namespace pyhot::patch

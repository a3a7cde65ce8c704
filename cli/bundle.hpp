// A bundle: a patch made on one machine (a developer's, or CI from a git
// revision) and applied on many (`pyhot apply`), self-contained and
// versioned: per module the new text and the text it expects to be live.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace pyhot::cli {

inline constexpr int k_bundle_version = 1;

struct BundleModule {
  std::string module;   // as the target's sys.modules knows it
  std::string path;     // where it was bundled from (for messages)
  std::string base;     // the text the bundle expects to be live
  std::string expects;  // its hash (util::hash_hex), as the agent's snapshot reports one
  std::string text;     // the new text
};

struct Bundle {
  std::string id;        // "b-" and the hash of its modules: also the patch's label in every process
  std::string revision;  // the git revision the base texts were taken from
  std::string made_by;   // "pyhot 0.1.0"
  std::vector<BundleModule> modules;
};

// The module a file is imported as: its name below the outermost directory
// of packages (directories with an __init__.py) holding it.
std::string module_name_for(const std::string& file);

// Each file's text now against its text at `revision` (git).
Result<Bundle> make_bundle(const std::vector<std::string>& files, const std::string& revision);

nlohmann::json to_json(const Bundle& bundle);
// Refuses (not_found, refused) what is not a bundle of a version this pyhot
// reads, or one whose texts do not match their hashes.
Result<Bundle> read_bundle(const std::string& path);

}  // namespace pyhot::cli

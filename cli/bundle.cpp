#include "cli/bundle.hpp"

#include <algorithm>
#include <filesystem>

#include "loader/agent_source.hpp"
#include "patch/baseline.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_format = "pyhot-bundle";

std::string bundle_id(const std::vector<BundleModule>& modules) {
  std::string joined;
  for (const auto& module : modules) {
    joined += module.module + '\0' + module.expects + '\0' + util::hash_hex(module.text) + '\0';
  }
  return "b-" + util::hash_hex(joined);
}

// The commit a revision names, short, so the bundle says what it was made against.
std::string resolved_revision(const std::string& file, const std::string& revision) {
  auto done =
      util::run_capture({"git", "rev-parse", "--short", revision + "^{commit}"}, fs::path(file).parent_path().string());
  if (!done || done->exit_code != 0) {
    return revision;
  }
  std::string commit = done->out.substr(0, done->out.find('\n'));
  return commit == revision ? revision : revision + " (" + commit + ")";
}

}  // namespace

std::string module_name_for(const std::string& file) {
  fs::path path(file);
  std::string name = path.stem().string();
  std::error_code error;
  for (fs::path directory = path.parent_path(); fs::exists(directory / "__init__.py", error);
       directory = directory.parent_path()) {
    name = directory.filename().string() + "." + name;
  }
  if (name.size() > 9 && name.ends_with(".__init__")) {
    name.resize(name.size() - 9);
  }
  return name;
}

Result<Bundle> make_bundle(const std::vector<std::string>& files, const std::string& revision) {
  Bundle bundle;
  bundle.made_by = "pyhot " + std::string(loader::pyhot_version());
  for (const auto& given : files) {
    std::string file = util::absolute_path(given);
    auto text = util::read_python_file(file);
    if (!text) {
      return text.error().with_context("bundling '" + given + "'");
    }
    auto base = patch::text_at_revision(file, revision);
    if (!base) {
      // The bundle says which text must be live where it lands: that text
      // comes from git, so say how to give it one.
      return make_error(base.error().kind, "bundling '" + given + "': " + base.error().message +
                                               " (a bundle is made against the deployed version in git: "
                                               "commit it, or name it with --base REV)");
    }
    if (*base == *text) {
      return make_error(ErrorKind::refused, given + " has not changed since " + revision + ": nothing to bundle");
    }
    bundle.modules.push_back({module_name_for(file), given, *base, util::hash_hex(*base), *text});
    if (bundle.revision.empty()) {
      bundle.revision = resolved_revision(file, revision);
    }
  }
  bundle.id = bundle_id(bundle.modules);
  return bundle;
}

json to_json(const Bundle& bundle) {
  json modules = json::array();
  for (const auto& module : bundle.modules) {
    modules.push_back({{"module", module.module},
                       {"path", module.path},
                       {"expects", module.expects},
                       {"base", module.base},
                       {"hash", util::hash_hex(module.text)},
                       {"text", module.text}});
  }
  return {{"format", k_format},          {"version", k_bundle_version}, {"id", bundle.id},
          {"revision", bundle.revision}, {"made_by", bundle.made_by},   {"modules", modules}};
}

namespace {

// A bundle holds two texts per module, each at most util::k_max_source_bytes
// (the size one apply request carries): a file far larger is not a bundle
// pyhot made, and reading and parsing it whole would take gigabytes.
constexpr std::uintmax_t k_max_bundle_bytes = 256U << 20;

std::string mebibytes(std::uintmax_t size) {
  auto tenths = size * 10 / (1U << 20);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " MiB";
}

}  // namespace

Result<Bundle> read_bundle(const std::string& path) {
  std::error_code unsized;
  auto size = std::filesystem::file_size(path, unsized);
  if (!unsized && size > k_max_bundle_bytes) {
    return make_error(ErrorKind::refused, "'" + path + "' is " + mebibytes(size) + ", over the " +
                                              std::to_string(k_max_bundle_bytes >> 20) +
                                              " MiB a pyhot bundle can be; nothing was read or sent");
  }
  auto text = util::read_file(path);
  if (!text) {
    return text.error();
  }
  json document = json::parse(*text, nullptr, false);
  if (document.is_discarded() || !document.is_object() || document.value("format", "") != k_format) {
    return make_error(ErrorKind::refused, path + " is not a pyhot bundle (make one with `pyhot bundle`)");
  }
  if (!document["version"].is_number_integer() || document["version"].get<int>() != k_bundle_version) {
    return make_error(ErrorKind::refused, path + " is a bundle of version " + document["version"].dump() +
                                              "; this pyhot reads version " + std::to_string(k_bundle_version));
  }
  Bundle bundle;
  bundle.id = document.value("id", "");
  bundle.revision = document.value("revision", "");
  bundle.made_by = document.value("made_by", "");
  try {
    for (const auto& module : document.at("modules")) {
      bundle.modules.push_back({module.at("module").get<std::string>(), module.value("path", ""),
                                module.at("base").get<std::string>(), module.at("expects").get<std::string>(),
                                module.at("text").get<std::string>()});
      const auto& added = bundle.modules.back();
      if (std::max(added.base.size(), added.text.size()) > util::k_max_source_bytes) {
        return make_error(ErrorKind::refused,
                          "'" + path + "' holds a text of " + added.module + " of " +
                              mebibytes(std::max(added.base.size(), added.text.size())) + ", over the " +
                              std::to_string(util::k_max_source_bytes >> 20) +
                              " MiB pyhot reads as one Python file; nothing was sent (not a bundle pyhot made)");
      }
      if (util::hash_hex(added.base) != added.expects || util::hash_hex(added.text) != module.value("hash", "")) {
        return make_error(ErrorKind::refused,
                          path + " is damaged: the texts of " + added.module + " do not match their hashes");
      }
    }
  } catch (const json::exception& error) {
    return make_error(ErrorKind::refused, path + " is not a valid pyhot bundle: " + error.what());
  }
  if (bundle.modules.empty() || bundle.id != bundle_id(bundle.modules)) {
    return make_error(ErrorKind::refused, path + " is damaged: its id does not match its modules");
  }
  return bundle;
}

}  // namespace pyhot::cli

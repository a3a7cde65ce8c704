// `pyhot inspect` (a module's globals, an attribute path, a class's
// attributes, optionally an expression over the value) and `pyhot
// instances` (a class's live instances found through the garbage
// collector): read-only looks at a live process.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "loader/agent_api.hpp"

namespace pyhot::cli {

using nlohmann::json;

namespace {

json value_json(const loader::ValueView& value) {
  json out = {{"type", value.type}, {"repr", value.repr}};
  if (!value.name.empty()) {
    out["name"] = value.name;
  }
  if (value.count) {
    out["count"] = *value.count;
    json members = json::array();
    for (const auto& member : value.members) {
      members.push_back(value_json(member));
    }
    out["members"] = members;
  }
  return out;
}

std::string members_word(std::int64_t count) { return std::to_string(count) + (count == 1 ? " member" : " members"); }

void print_value(const loader::ValueView& value, const std::string& name, int indent) {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  if (value.count && !value.members.empty()) {
    std::cout << pad << name << ": " << value.type << " (" << members_word(*value.count) << ")\n";
    for (const auto& member : value.members) {
      print_value(member, member.name, indent + 1);
    }
    if (*value.count > static_cast<std::int64_t>(value.members.size())) {
      std::cout << pad << "  ... " << *value.count - static_cast<std::int64_t>(value.members.size()) << " more\n";
    }
    return;
  }
  std::cout << pad << name << ": " << value.type << " = " << value.repr << "\n";
}

// Opens the agent or prints why not; null on failure.
loader::AgentClient* open_for(const InspectOptions& options, std::unique_ptr<loader::AgentClient>& holder) {
  json document;
  auto* client = open_or_report(options.pid, options.force, options.json, document, holder);
  if (client == nullptr && options.json) {
    print_json(document);
  }
  return client;
}

int report_failure(const Error& error, bool json_output) {
  if (json_output) {
    print_json({{"ok", false}, {"error", error.message}, {"error_kind", error_kind_name(error.kind)}});
  } else {
    std::cerr << "pyhot: " << error_text(error) << "\n";
  }
  return k_exit_failed;
}

std::string milliseconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", seconds * 1000);
  return text;
}

}  // namespace

int run_inspect(const InspectOptions& options) {
  std::unique_ptr<loader::AgentClient> holder;
  auto* client = open_for(options, holder);
  if (client == nullptr) {
    return k_exit_failed;
  }
  loader::Agent agent(*client);
  loader::InspectRequest request{options.path, std::nullopt, options.depth};
  if (!options.expr.empty()) {
    request.expr = options.expr;
  }
  auto reply = agent.inspect(request);
  if (!reply) {
    return report_failure(reply.error(), options.json);
  }
  if (options.json) {
    print_json({{"ok", true}, {"pid", options.pid}, {"path", reply->path}, {"value", value_json(reply->value)}});
    return k_exit_done;
  }
  print_value(reply->value, reply->path, 0);
  return k_exit_done;
}

int run_instances(const InspectOptions& options) {
  std::unique_ptr<loader::AgentClient> holder;
  auto* client = open_for(options, holder);
  if (client == nullptr) {
    return k_exit_failed;
  }
  loader::Agent agent(*client);
  loader::InstancesRequest request;
  request.class_path = options.path;
  request.limit = options.limit;
  if (!options.expr.empty()) {
    request.expr = options.expr;
  }
  auto reply = agent.instances(request);
  if (!reply) {
    return report_failure(reply.error(), options.json);
  }
  if (options.json) {
    json instances = json::array();
    for (const auto& instance : reply->instances) {
      json one = {{"id", instance.id}, {"type", instance.type}};
      if (instance.value) {
        one["value"] = *instance.value;
      } else {
        json attributes = json::object();
        for (const auto& [name, value] : instance.attributes) {
          attributes[name] = value;
        }
        one["attributes"] = attributes;
      }
      instances.push_back(std::move(one));
    }
    print_json({{"ok", true},
                {"pid", options.pid},
                {"class", reply->class_path},
                {"count", reply->count},
                {"complete", reply->complete},
                {"scanned", reply->scanned ? json(*reply->scanned) : json(nullptr)},
                {"seconds", reply->seconds},
                {"instances", instances}});
    return k_exit_done;
  }
  std::cout << reply->count << (reply->count == 1 ? " live instance of " : " live instances of ") << reply->class_path
            << " (subclasses included; " << milliseconds(reply->seconds) << " in the garbage collector)\n";
  if (!reply->complete) {
    std::cout << "Stopped early at the time limit after " << reply->scanned.value_or(0)
              << " objects: there may be more.\n";
  }
  for (const auto& instance : reply->instances) {
    std::cout << "  " << instance.id << "  " << instance.type;
    if (instance.value) {
      std::cout << "  " << *instance.value;
    }
    for (const auto& [name, value] : instance.attributes) {
      std::cout << "  " << name << "=" << value;
    }
    std::cout << "\n";
  }
  auto shown = static_cast<std::int64_t>(reply->instances.size());
  if (reply->count > shown) {
    std::cout << "  ... " << reply->count - shown << " more (a larger --limit shows them)\n";
  }
  return k_exit_done;
}

}  // namespace pyhot::cli

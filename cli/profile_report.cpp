#include "cli/profile_report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <sstream>

namespace pyhot::cli {

using loader::ProfileNode;
using nlohmann::json;

namespace {

constexpr double k_ms = 1000.0;
constexpr std::size_t k_min_name_width = 28;

std::string name_of(const ProcessProfile& profile, int probe) {
  auto found = profile.functions.find(probe);
  return found == profile.functions.end() ? "probe " + std::to_string(probe) : found->second.name;
}

// Children by total time, largest first; ties by name so output is stable.
std::vector<const ProfileNode*> ordered(const std::vector<ProfileNode>& nodes, const ProcessProfile& profile) {
  std::vector<const ProfileNode*> out;
  for (const auto& node : nodes) {
    out.push_back(&node);
  }
  std::sort(out.begin(), out.end(), [&](const ProfileNode* a, const ProfileNode* b) {
    if (a->total != b->total) {
      return a->total > b->total;
    }
    return name_of(profile, a->probe) < name_of(profile, b->probe);
  });
  return out;
}

void visit(const std::vector<ProfileNode>& nodes, const ProcessProfile& profile, int depth,
           const std::function<void(const ProfileNode&, int)>& each) {
  for (const auto* node : ordered(nodes, profile)) {
    each(*node, depth);
    visit(node->children, profile, depth + 1, each);
  }
}

json node_json(const ProfileNode& node, const ProcessProfile& profile) {
  json out = {{"function", name_of(profile, node.probe)},
              {"hits", node.hits},
              {"total_ms", node.total * k_ms},
              {"per_hit_ms", node.hits > 0 ? node.total * k_ms / static_cast<double>(node.hits) : 0.0},
              {"max_ms", node.max * k_ms},
              {"self_ms", node.self * k_ms},
              {"raised", node.raised}};
  if (auto found = profile.functions.find(node.probe); found != profile.functions.end()) {
    out["file"] = found->second.file;
    out["line"] = found->second.line;
  }
  json children = json::array();
  for (const auto* child : ordered(node.children, profile)) {
    children.push_back(node_json(*child, profile));
  }
  out["children"] = children;
  return out;
}

// "Thread-12 (worker)" -> "Thread-* (worker)"; other names stay.
std::string group_name(const std::string& name) {
  const std::string prefix = "Thread-";
  if (name.rfind(prefix, 0) != 0) {
    return name;
  }
  std::size_t end = prefix.size();
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end])) != 0) {
    ++end;
  }
  if (end == prefix.size() || (end < name.size() && name.compare(end, 2, " (") != 0)) {
    return name;
  }
  return prefix + "*" + name.substr(end);
}

void add_nodes(std::vector<ProfileNode>& into, const std::vector<ProfileNode>& nodes) {
  for (const auto& node : nodes) {
    auto found = std::find_if(into.begin(), into.end(), [&](const ProfileNode& n) { return n.probe == node.probe; });
    if (found == into.end()) {
      into.push_back(node);
      continue;
    }
    found->hits += node.hits;
    found->total += node.total;
    found->max = std::max(found->max, node.max);
    found->self += node.self;
    found->raised += node.raised;
    add_nodes(found->children, node.children);
  }
}

// A timed function's counts by line, its total seconds (all its lines) and
// those of the lines shown: the % column's whole. A range of a function is
// asked for to see how its time divides among those lines, so they add up
// to 100%; the header gives both totals.
struct LineCounts {
  std::map<std::uint32_t, loader::TimedLine> by_line;
  double total = 0;
  double shown = 0;
  std::int64_t calls = 0;
};

LineCounts line_counts(const loader::LineTimedFunction& function, const ProfiledFunction& shown) {
  LineCounts out;
  out.calls = function.calls;
  for (const auto& line : function.lines) {
    out.by_line[line.line] = line;
    out.total += line.total;
    if (shown.first_shown <= line.line && line.line <= shown.last_shown) {
      out.shown += line.total;
    }
  }
  return out;
}

double percent(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

std::string percent_text(double part, double whole) {
  char text[16];
  std::snprintf(text, sizeof text, "%.1f", whole > 0 ? 100.0 * part / whole : 0.0);
  return text;
}

// The functions timed, in probe order; a function without a call yet has no counts.
std::vector<std::pair<const ProfiledFunction*, LineCounts>> timed_functions(const ProcessProfile& profile) {
  std::vector<std::pair<const ProfiledFunction*, LineCounts>> out;
  for (const auto& [probe, function] : profile.functions) {
    LineCounts counts;
    for (const auto& timed : profile.data.line_functions) {
      if (timed.probe == probe) {
        counts = line_counts(timed, function);
      }
    }
    out.emplace_back(&function, std::move(counts));
  }
  return out;
}

}  // namespace

loader::ProfileData group_threads(const loader::ProfileData& data, std::map<std::string, int>* members) {
  loader::ProfileData out = data;
  out.threads.clear();
  for (const auto& thread : data.threads) {
    std::string name = group_name(thread.name);
    auto found = std::find_if(out.threads.begin(), out.threads.end(),
                              [&](const loader::ProfileThread& t) { return t.name == name; });
    if (found == out.threads.end()) {
      out.threads.push_back({thread.id, name, thread.calls});
    } else {
      add_nodes(found->calls, thread.calls);
    }
    if (members != nullptr) {
      ++(*members)[name];
    }
  }
  return out;
}

std::string format_ms(double milliseconds) {
  char text[32];
  double size = std::fabs(milliseconds);
  std::snprintf(text, sizeof text, size >= 1 || size == 0 ? "%.1f" : size >= 0.1 ? "%.2f" : "%.3f", milliseconds);
  return text;
}

void print_profile(std::ostream& out, const ProcessProfile& profile) {
  if (profile.lines) {
    print_line_profile(out, profile);
    return;
  }
  if (profile.data.threads.empty()) {
    out << "process " << profile.pid << ": no call of a profiled function completed\n";
  }
  for (const auto& thread : profile.data.threads) {
    std::size_t width = k_min_name_width;
    bool raised = false;
    visit(thread.calls, profile, 0, [&](const ProfileNode& node, int depth) {
      width = std::max(width, static_cast<std::size_t>(depth) * 2 + name_of(profile, node.probe).size() + 2);
      raised = raised || node.raised > 0;
    });
    auto group = profile.members.find(thread.name);
    int count = group == profile.members.end() ? 1 : group->second;
    out << "process " << profile.pid << ", thread" << (count > 1 ? "s " : " ") << thread.name
        << (count > 1 ? " (" + std::to_string(count) + " threads)" : "") << "\n";
    out << std::left << std::setw(static_cast<int>(width)) << "function" << std::right << std::setw(6) << "hits"
        << std::setw(11) << "total ms" << std::setw(10) << "per hit" << std::setw(9) << "max ms" << std::setw(10)
        << "self ms" << (raised ? "   raised" : "") << "\n";
    visit(thread.calls, profile, 0, [&](const ProfileNode& node, int depth) {
      double per_hit = node.hits > 0 ? node.total / static_cast<double>(node.hits) : 0;
      out << std::left << std::setw(static_cast<int>(width))
          << std::string(static_cast<std::size_t>(depth) * 2, ' ') + name_of(profile, node.probe) << std::right
          << std::setw(6) << node.hits << std::setw(11) << format_ms(node.total * k_ms) << std::setw(10)
          << format_ms(per_hit * k_ms) << std::setw(9) << format_ms(node.max * k_ms) << std::setw(10)
          << format_ms(node.self * k_ms);
      if (raised) {
        out << std::setw(9) << node.raised;
      }
      out << "\n";
    });
  }
  for (const auto& name : profile.changed) {
    out << "note: " << name << " was reloaded while profiled; its new code was not profiled and was kept\n";
  }
  for (const auto& name : profile.reprofiled) {
    out << "note: " << name << " was reloaded while profiled; its new code was profiled from then on (its rows "
        << "after the reload are at the top level)\n";
  }
  if (profile.data.lost > 0) {
    out << "note: " << profile.data.lost << " calls could not be paired with their caller and were left out\n";
  }
}

void print_line_profile(std::ostream& out, const ProcessProfile& profile) {
  bool first = true;
  for (const auto& [function, counts] : timed_functions(profile)) {
    out << (first ? "" : "\n") << "process " << profile.pid << ", " << function->name << "\n"
        << "Total time: " << format_ms(counts.total * k_ms) << " ms in " << counts.calls
        << (counts.calls == 1 ? " call" : " calls") << "\n"
        << "File: " << function->file << "\n"
        << "Function: " << function->name.substr(function->name.rfind('.') + 1) << " at line " << function->line
        << "\n";
    if (function->part) {
      out << "Lines " << function->first_shown << "-" << function->last_shown << ": " << format_ms(counts.shown * k_ms)
          << " ms, " << percent_text(counts.shown, counts.total) << "% of the function (% Time is of lines "
          << function->first_shown << "-" << function->last_shown << ")\n";
    }
    out << "\n";
    first = false;
    out << std::right << std::setw(6) << "Line #" << std::setw(10) << "Hits" << std::setw(13) << "Total ms"
        << std::setw(10) << "Per hit" << std::setw(9) << "% Time"
        << "  Line Contents\n"
        << std::string(63, '=') << "\n";
    for (auto line = function->first_shown; line <= function->last_shown; ++line) {
      std::size_t index = line - function->line;
      std::string text = index < function->text.size() ? function->text[index] : std::string();
      auto found = counts.by_line.find(line);
      out << std::setw(6) << line;
      if (found == counts.by_line.end()) {
        out << std::string(42, ' ');
      } else {
        const auto& timed = found->second;
        double per_hit = timed.hits > 0 ? timed.total / static_cast<double>(timed.hits) : 0;
        out << std::setw(10) << timed.hits << std::setw(13) << format_ms(timed.total * k_ms) << std::setw(10)
            << format_ms(per_hit * k_ms) << std::setw(9)
            << percent_text(timed.total, function->part ? counts.shown : counts.total);
      }
      out << "  " << text << "\n";
    }
  }
  for (const auto& name : profile.changed) {
    out << "note: " << name << " was reloaded while timed; its new code was not timed and was kept\n";
  }
  for (const auto& name : profile.reprofiled) {
    out << "note: " << name << " was reloaded while timed; its new code was timed from then on (a table of its "
        << "own)\n";
  }
}

void print_flat(std::ostream& out, const ProcessProfile& profile) {
  struct Row {
    std::int64_t hits = 0;
    double total = 0;
    double self = 0;
    std::int64_t raised = 0;
  };
  std::map<std::string, Row> rows;
  for (const auto& thread : profile.data.threads) {
    visit(thread.calls, profile, 0, [&](const ProfileNode& node, int) {
      auto& row = rows[name_of(profile, node.probe)];
      row.hits += node.hits;
      row.total += node.total;
      row.self += node.self;
      row.raised += node.raised;
    });
  }
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.self > b.second.self; });
  out << "process " << profile.pid << "\n"
      << std::left << std::setw(static_cast<int>(k_min_name_width)) << "function" << std::right << std::setw(8)
      << "hits" << std::setw(11) << "self ms" << std::setw(11) << "total ms" << std::setw(8) << "raised"
      << "\n";
  for (const auto& [name, row] : sorted) {
    out << std::left << std::setw(static_cast<int>(k_min_name_width)) << name << std::right << std::setw(8) << row.hits
        << std::setw(11) << format_ms(row.self * k_ms) << std::setw(11) << format_ms(row.total * k_ms) << std::setw(8)
        << row.raised << "\n";
  }
}

void print_live(std::ostream& out, const ProcessProfile& profile) {
  if (profile.lines) {
    print_line_profile(out, profile);
  } else {
    print_flat(out, profile);
  }
}

json profile_json(const std::vector<ProcessProfile>& profiles) {
  json processes = json::array();
  for (const auto& profile : profiles) {
    json threads = json::array();
    for (const auto& thread : profile.data.threads) {
      json calls = json::array();
      for (const auto* node : ordered(thread.calls, profile)) {
        calls.push_back(node_json(*node, profile));
      }
      auto group = profile.members.find(thread.name);
      threads.push_back({{"id", thread.id},
                         {"name", thread.name},
                         {"threads", group == profile.members.end() ? 1 : group->second},
                         {"calls", calls}});
    }
    if (profile.lines) {
      json functions = json::array();
      for (const auto& [function, counts] : timed_functions(profile)) {
        json lines = json::array();
        for (auto line = function->first_shown; line <= function->last_shown; ++line) {
          auto found = counts.by_line.find(line);
          if (found == counts.by_line.end()) {
            continue;
          }
          const auto& timed = found->second;
          std::size_t index = line - function->line;
          lines.push_back({{"line", line},
                           {"hits", timed.hits},
                           {"total_ms", timed.total * k_ms},
                           {"per_hit_ms", timed.hits > 0 ? timed.total * k_ms / static_cast<double>(timed.hits) : 0},
                           {"percent", percent(timed.total, function->part ? counts.shown : counts.total)},
                           {"percent_of_function", percent(timed.total, counts.total)},
                           {"text", index < function->text.size() ? function->text[index] : ""}});
        }
        functions.push_back({{"function", function->name},
                             {"file", function->file},
                             {"line", function->line},
                             {"calls", counts.calls},
                             {"total_ms", counts.total * k_ms},
                             {"shown",
                              {{"first", function->first_shown},
                               {"last", function->last_shown},
                               {"total_ms", counts.shown * k_ms},
                               {"part", function->part}}},
                             {"lines", lines}});
      }
      processes.push_back({{"pid", profile.pid},
                           {"seconds", profile.data.ended - profile.data.started},
                           {"functions", functions},
                           {"changed", profile.changed},
                           {"reprofiled", profile.reprofiled}});
      continue;
    }
    processes.push_back({{"pid", profile.pid},
                         {"seconds", profile.data.ended - profile.data.started},
                         {"threads", threads},
                         {"changed", profile.changed},
                         {"reprofiled", profile.reprofiled},
                         {"lost", profile.data.lost}});
  }
  return {{"ok", true}, {"processes", processes}};
}

std::string collapsed_stacks(const std::vector<ProcessProfile>& profiles, bool by_process) {
  std::ostringstream out;
  for (const auto& profile : profiles) {
    for (const auto& thread : profile.data.threads) {
      std::vector<std::string> stack;
      std::function<void(const std::vector<ProfileNode>&)> walk = [&](const std::vector<ProfileNode>& nodes) {
        for (const auto* node : ordered(nodes, profile)) {
          stack.push_back(name_of(profile, node->probe));
          // Rounded by hand: std::llround would make the binary need libm,
          // and an installed pyhot needs nothing beyond libc (check_packaging.sh).
          auto micros = static_cast<long long>(node->self * 1e6 + 0.5);
          if (micros > 0) {
            out << (by_process || profiles.size() > 1 ? "process " + std::to_string(profile.pid) + ";" : "")
                << thread.name;
            for (const auto& frame : stack) {
              out << ";" << frame;
            }
            out << " " << micros << "\n";
          }
          walk(node->children);
          stack.pop_back();
        }
      };
      walk(thread.calls);
    }
  }
  return out.str();
}

json speedscope_document(const std::vector<ProcessProfile>& profiles) {
  json frames = json::array();
  std::map<std::string, std::size_t> frame_index;
  auto frame_of = [&](const ProcessProfile& profile, int probe) {
    std::string name = name_of(profile, probe);
    auto [at, added] = frame_index.emplace(name, frames.size());
    if (added) {
      json frame = {{"name", name}};
      if (auto found = profile.functions.find(probe); found != profile.functions.end()) {
        frame["file"] = found->second.file;
        frame["line"] = found->second.line;
      }
      frames.push_back(frame);
    }
    return at->second;
  };
  json documents = json::array();
  for (const auto& profile : profiles) {
    for (const auto& thread : profile.data.threads) {
      json samples = json::array();
      json weights = json::array();
      double total = 0;
      std::vector<std::size_t> stack;
      std::function<void(const std::vector<ProfileNode>&)> walk = [&](const std::vector<ProfileNode>& nodes) {
        for (const auto* node : ordered(nodes, profile)) {
          stack.push_back(frame_of(profile, node->probe));
          if (node->self > 0) {
            samples.push_back(stack);
            weights.push_back(node->self * k_ms);
            total += node->self * k_ms;
          }
          walk(node->children);
          stack.pop_back();
        }
      };
      walk(thread.calls);
      documents.push_back({{"type", "sampled"},
                           {"name", "process " + std::to_string(profile.pid) + ", thread " + thread.name},
                           {"unit", "milliseconds"},
                           {"startValue", 0},
                           {"endValue", total},
                           {"samples", samples},
                           {"weights", weights}});
    }
  }
  return {{"$schema", "https://www.speedscope.app/file-format-schema.json"},
          {"shared", {{"frames", frames}}},
          {"profiles", documents},
          {"name", "pyhot profile"},
          {"activeProfileIndex", 0},
          {"exporter", "pyhot"}};
}

}  // namespace pyhot::cli

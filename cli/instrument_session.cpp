#include "cli/instrument_session.hpp"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <iostream>
#include <random>

#include "cli/commands.hpp"
#include "cli/live_process.hpp"

#include "parser/parser.hpp"
#include "util/file.hpp"

namespace pyhot::cli {

namespace {

volatile sig_atomic_t g_interrupted = 0;

void note_interrupt(int) { g_interrupted = 1; }

constexpr int k_signals[3] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[3]{};

}  // namespace

InterruptScope::InterruptScope() {
  g_interrupted = 0;
  struct sigaction action {};
  action.sa_handler = note_interrupt;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 3; ++i) {
    sigaction(k_signals[i], &action, &g_previous[i]);
  }
}

InterruptScope::~InterruptScope() {
  for (int i = 0; i < 3; ++i) {
    sigaction(k_signals[i], &g_previous[i], nullptr);
  }
}

bool interrupted() { return g_interrupted != 0; }

void pause_until(std::chrono::steady_clock::time_point until) {
  using Clock = std::chrono::steady_clock;
  while (!g_interrupted && Clock::now() < until) {
    auto left = std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100));
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec wait{static_cast<time_t>(nanos / 1000000000), static_cast<long>(nanos % 1000000000)};
    nanosleep(&wait, nullptr);
  }
}

std::string new_probe_marker() {
  std::random_device random;
  std::uniform_int_distribution<unsigned> digit(0, 15);
  std::string marker = "__pyhot_probe_";
  for (int i = 0; i < 16; ++i) {
    marker += "0123456789abcdef"[digit(random)];
  }
  return marker;
}

FunctionCatalog::Loader live_module_text(loader::Agent& agent) {
  return [&agent](const loader::LoadedModule& module) -> Result<parser::SourceFile> {
    auto recorded = agent.snapshot(module.name);
    if (recorded && *recorded) {
      return parser::parse_source(**recorded, module.file);
    }
    auto text = util::read_file(module.file);
    if (!text) {
      return text.error();
    }
    return parser::parse_source(*text, module.file);
  };
}

std::optional<int> instrumentation_id(const std::string& word) {
  if (word.size() < 2 || word[0] != 'i' || word.size() > 10 ||
      word.find_first_not_of("0123456789", 1) != std::string::npos) {
    return std::nullopt;
  }
  return std::stoi(word.substr(1));
}

nlohmann::json list_instrumentations(loader::Agent& agent, int pid, bool print) {
  nlohmann::json out = nlohmann::json::array();
  auto active = agent.instrument_list();
  if (!active) {
    return out;
  }
  if (print && !active->empty()) {
    std::cout << "Active instrumentations (removed when their pyhot ends; `pyhot revert " << pid
              << " iN` removes one now):\n";
  }
  for (const auto& item : *active) {
    out.push_back({{"id", "i" + std::to_string(item.session)},
                   {"kind", item.kind},
                   {"started", item.started},
                   {"functions", item.functions}});
    if (print) {
      std::cout << "i" << item.session << "  " << format_time(item.started) << "  " << item.kind << " ";
      for (const auto& function : item.functions) {
        std::cout << " " << function;
      }
      std::cout << "\n";
    }
  }
  return out;
}

int remove_instrumentation(loader::Agent& agent, int session, bool json_output, nlohmann::json& document) {
  std::string kind = "instrumentation";
  if (auto active = agent.instrument_list()) {
    for (const auto& item : *active) {
      if (item.session == session) {
        kind = item.kind;
      }
    }
  }
  auto removed = agent.instrument_remove(session);
  if (!removed) {
    document = {{"ok", false}, {"error", removed.error().message}};
    if (!json_output) {
      std::cout << "Error: " << removed.error().message << "\n";
    }
    return k_exit_failed;
  }
  document = {{"ok", true}, {"removed", "i" + std::to_string(session)}, {"kept", removed->changed}};
  if (!json_output) {
    std::cout << "Removed " << kind << " i" << session << ": the original code is back\n";
  }
  return k_exit_done;
}

}  // namespace pyhot::cli

#include "cli/process_tree.hpp"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "cli/commands.hpp"
#include "loader/process.hpp"

namespace pyhot::cli {

namespace {

constexpr int k_max_passes = 20;
constexpr int k_passes_for_a_lone_root = 3;
// A failing process that is on its way out (a recycled worker) is given
// this long to finish exiting before its failure counts; longer when its
// agent could not even be reached: an exiting worker whose interpreter is
// already finalizing refuses the attach, and its exit handlers and
// finalization can take seconds on a loaded machine (gunicorn, 2 of 100
// rounds in bench/tree/bench_stale.py). That longer wait is taken at the
// end of the command, for all of them at once: waiting in turn for each
// would let the other workers be recycled meanwhile.
constexpr auto k_exit_grace = std::chrono::milliseconds(500);
constexpr auto k_unreached_exit_grace = std::chrono::milliseconds(3000);
constexpr auto k_retry_pause = std::chrono::milliseconds(200);

// Captures what a command prints for one process, so the runner can replace
// it with a one-line note when the process exited or lacks the module.
class CapturedOutput {
 public:
  CapturedOutput() : m_previous_out(std::cout.rdbuf(m_out.rdbuf())), m_previous_err(std::cerr.rdbuf(m_err.rdbuf())) {}
  ~CapturedOutput() {
    std::cout.rdbuf(m_previous_out);
    std::cerr.rdbuf(m_previous_err);
  }
  CapturedOutput(const CapturedOutput&) = delete;
  CapturedOutput& operator=(const CapturedOutput&) = delete;
  std::string out() const { return m_out.str(); }
  std::string err() const { return m_err.str(); }

 private:
  std::ostringstream m_out;
  std::ostringstream m_err;
  std::streambuf* m_previous_out;
  std::streambuf* m_previous_err;
};

bool exited_within_grace(int pid, std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (!loader::process_has_ended(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TreeMember run_once(int pid, const TreeCommand& command) {
  TreeMember member;
  member.pid = pid;
  int code = k_exit_failed;
  {
    CapturedOutput captured;
    code = command(pid, member.document);
    member.output = captured.out();
    member.errors = captured.err();
  }
  member.code = code;
  if (member.document.value("already_live", false)) {
    member.outcome = MemberOutcome::confirmed;
  } else if (code == k_exit_done) {
    member.outcome = MemberOutcome::done;
  } else if (exited_within_grace(pid, k_exit_grace)) {
    member.outcome = MemberOutcome::exited;
  } else if (member.document.value("lacks_module", false)) {
    member.outcome = MemberOutcome::lacks_module;
  } else if (member.document.value("not_reached", false)) {
    member.outcome = MemberOutcome::not_reached;
  } else {
    member.outcome = MemberOutcome::failed;
  }
  return member;
}

// A worker forked a moment ago may be starting the agent it inherited just
// as pyhot connects (its main thread then waits for the GIL the new agent
// thread holds): when opening the agent failed and the process lives on, it
// is asked once more.
TreeMember run_one(int pid, const TreeCommand& command) {
  TreeMember member = run_once(pid, command);
  if (member.outcome == MemberOutcome::failed && member.document.contains("error_kind")) {
    std::this_thread::sleep_for(k_retry_pause);
    member = run_once(pid, command);
  }
  return member;
}

// The processes that run what the command did, each with the address-space
// layout it had and since when it runs it (CLOCK_BOOTTIME): from when its
// command returned, or from its birth for one that inherited it.
class Holders {
 public:
  void add(int pid, std::uint64_t start, const loader::ProcessImage& image, std::uint64_t since_ns) {
    m_holders[pid] = {start, image, since_ns};
  }

  // The parent `pid` was forked from, when the fork copied what the command
  // did: the parent held it before the fork, and the child has not exec'd
  // since (its layout is still the parent's). A process that started after
  // the command returned in its parent was forked after it was done there.
  // Such a child is a holder from its birth on, for its own children.
  std::optional<int> inherited_by(int pid, std::uint64_t start) {
    auto parent = loader::parent_pid(pid);
    if (!parent) {
      return std::nullopt;
    }
    auto holder = m_holders.find(*parent);
    if (holder == m_holders.end() || loader::process_start_time(*parent) != holder->second.start ||
        !loader::started_after(pid, holder->second.since_ns)) {
      return std::nullopt;
    }
    auto image = loader::process_image(pid);
    if (image != holder->second.image) {
      return std::nullopt;
    }
    add(pid, start, *image, 0);
    return *parent;
  }

 private:
  struct Holder {
    std::uint64_t start;
    loader::ProcessImage image;
    std::uint64_t since_ns;
  };
  std::map<int, Holder> m_holders;
};

// The Python processes below `root` not yet run on; a recycled pid counts
// as a new process (its start time differs).
std::vector<std::pair<int, std::uint64_t>> new_python_descendants(int root, std::set<std::pair<int, uint64_t>>& seen) {
  std::vector<std::pair<int, std::uint64_t>> found;
  for (int pid : loader::descendant_pids(root)) {
    auto identity = std::make_pair(pid, loader::process_start_time(pid));
    if (seen.count(identity) != 0) {
      continue;
    }
    auto info = loader::inspect_process(pid);
    if (info && info->is_python()) {
      seen.insert(identity);
      found.push_back(identity);
    }
  }
  return found;
}

TreeMember inherited_member(int pid, int parent) {
  TreeMember member;
  member.pid = pid;
  member.code = k_exit_done;
  member.outcome = MemberOutcome::inherited;
  member.document = {{"ok", true}, {"inherited_from", parent}};
  return member;
}

}  // namespace

std::vector<TreeMember> run_over_tree(int root, const TreeCommand& command, ForkedChildren children) {
  std::set<std::pair<int, uint64_t>> seen{{root, loader::process_start_time(root)}};
  Holders holders;
  auto run = [&](int pid, std::uint64_t start) {
    // The layout before the command: one that changes meanwhile (an exec)
    // is not the image the command changed.
    auto image = loader::process_image(pid);
    TreeMember member = run_one(pid, command);
    bool holds = member.outcome == MemberOutcome::done || member.outcome == MemberOutcome::confirmed;
    if (children == ForkedChildren::inherit && holds && image && loader::process_image(pid) == image) {
      holders.add(pid, start, *image, loader::boottime_now_ns());
    }
    return member;
  };
  std::vector<TreeMember> members{run(root, seen.begin()->second)};
  // The root first: a worker it forks from now on starts from the patched
  // root and is only confirmed by the next pass. A worker forked before it
  // was patched is listed by the next pass and patched itself.
  for (int pass = 0; pass < k_max_passes; ++pass) {
    auto found = new_python_descendants(root, seen);
    if (found.empty()) {
      // Every worker listed so far may have been recycled meanwhile: their
      // replacements are still to be found, after a moment.
      bool none_below = std::none_of(members.begin() + 1, members.end(), [](const TreeMember& member) {
        return member.outcome == MemberOutcome::done || member.outcome == MemberOutcome::confirmed ||
               member.outcome == MemberOutcome::inherited;
      });
      // A root that lacks the module and has no workers yet is looked at a
      // few times: it may be a master between two generations of workers
      // (those that import the module after the fork).
      bool root_lacks = members.front().outcome == MemberOutcome::lacks_module;
      bool keep_looking = none_below && (members.size() > 1 || (root_lacks && pass < k_passes_for_a_lone_root));
      if (!keep_looking || pass + 1 == k_max_passes) {
        break;
      }
      std::this_thread::sleep_for(k_retry_pause);
      continue;
    }
    for (auto [pid, start] : found) {
      if (children == ForkedChildren::inherit) {
        if (auto parent = holders.inherited_by(pid, start)) {
          members.push_back(inherited_member(pid, *parent));
          continue;
        }
      }
      members.push_back(run(pid, start));
    }
  }
  // Processes whose agent could not be reached get the longer grace here,
  // all together, to finish exiting.
  auto deadline = std::chrono::steady_clock::now() + k_unreached_exit_grace;
  for (auto& member : members) {
    if (member.outcome != MemberOutcome::failed || !member.document.contains("error_kind")) {
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (exited_within_grace(member.pid, std::max(left, std::chrono::milliseconds(0)))) {
      member.outcome = MemberOutcome::exited;
    }
  }
  return members;
}

int tree_exit_code(const std::vector<TreeMember>& members) {
  bool any_done = false;
  for (const auto& member : members) {
    if (member.outcome == MemberOutcome::failed) {
      return k_exit_failed;
    }
    any_done = any_done || member.outcome == MemberOutcome::done;
  }
  if (any_done) {
    return k_exit_done;
  }
  // Nothing needed changing anywhere (workers that import after the fork
  // read the edited file): the tree answers as one such process would.
  for (const auto& member : members) {
    if (member.outcome == MemberOutcome::confirmed) {
      return member.code;
    }
  }
  return k_exit_failed;  // no process has the module
}

void OutcomeCounts::add(MemberOutcome outcome) {
  switch (outcome) {
    case MemberOutcome::done:
      ++done;
      return;
    case MemberOutcome::confirmed:
      ++confirmed;
      return;
    case MemberOutcome::failed:
      ++failed;
      return;
    case MemberOutcome::lacks_module:
      ++lacks_module;
      return;
    case MemberOutcome::exited:
      ++exited;
      return;
    case MemberOutcome::not_reached:
      ++not_reached;
      return;
    case MemberOutcome::inherited:
      ++inherited;
      return;
  }
}

void print_tree(const std::vector<TreeMember>& members, const std::string& what) {
  OutcomeCounts counts;
  for (const auto& member : members) {
    counts.add(member.outcome);
    std::cout << "== process " << member.pid;
    if (member.outcome == MemberOutcome::exited) {
      std::cout << ": exited during " << member.document.value("during", std::string("the command"))
                << " (not counted)\n";
    } else if (member.outcome == MemberOutcome::lacks_module) {
      std::cout << ": does not have the module loaded; skipped\n";
    } else if (member.outcome == MemberOutcome::not_reached) {
      std::cout << ": never had the patch; skipped\n";
    } else if (member.outcome == MemberOutcome::inherited) {
      std::cout << ": forked from process " << member.document.value("inherited_from", 0)
                << " after it had it (not contacted)\n";
    } else {
      std::cout << "\n" << member.output << std::flush;
      std::cerr << member.errors;
    }
  }
  std::cout << counts.running_it() << " of " << counts.alive_with_module() << " processes " << what;
  if (counts.confirmed > 0 && counts.inherited > 0) {
    std::cout << " (" << counts.confirmed << " already did, " << counts.inherited << " forked after it)";
  } else if (counts.confirmed > 0) {
    std::cout << " (" << counts.confirmed << " already did)";
  } else if (counts.inherited > 0) {
    std::cout << " (" << counts.inherited << " forked after it)";
  }
  if (counts.exited > 0) {
    std::cout << "; " << counts.exited << " exited during the command";
  }
  if (counts.lacks_module > 0) {
    std::cout << "; " << counts.lacks_module << " without the module, skipped";
  }
  if (counts.not_reached > 0) {
    std::cout << "; " << counts.not_reached << " never had the patch, skipped";
  }
  std::cout << ".\n";
}

nlohmann::json tree_to_json(const std::vector<TreeMember>& members) {
  static constexpr const char* k_words[] = {"done",   "confirmed",   "failed",   "lacks_module",
                                            "exited", "not_reached", "inherited"};
  nlohmann::json processes = nlohmann::json::array();
  for (const auto& member : members) {
    nlohmann::json document = member.document;
    document["pid"] = member.pid;
    document["outcome"] = k_words[static_cast<int>(member.outcome)];
    processes.push_back(std::move(document));
  }
  return {{"ok", tree_exit_code(members) == k_exit_done}, {"processes", processes}};
}

std::string make_tree_label() {
  std::random_device random;
  std::ostringstream label;
  label << "t-" << std::hex << std::setw(8) << std::setfill('0') << (random() & 0xffffffffU);
  return label.str();
}

bool is_patch_label(const std::string& word) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  auto allowed = [&](char c) {
    return digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == ':' || c == '-';
  };
  return !word.empty() && word.size() <= 64 && std::all_of(word.begin(), word.end(), allowed) &&
         !std::all_of(word.begin(), word.end(), digit);
}

}  // namespace pyhot::cli

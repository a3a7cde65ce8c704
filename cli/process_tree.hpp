// Runs one command over a process tree (pre-fork servers: a master and the
// workers it forks and recycles) until every live Python process in it has
// had the command, including workers forked while it ran.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pyhot::cli {

// How the command ended in one process of the tree.
enum class MemberOutcome {
  done,          // the command did what it says
  confirmed,     // nothing to do: the process already runs it (forked after its parent had it)
  failed,        // a real failure: counts against the exit status
  lacks_module,  // the process never imported the module: skipped with a note
  exited,        // the process ended while the command ran: reported, not a failure
  not_reached,   // revert: the patch never reached the process (it imported the module later): a note
  inherited,     // forked after its parent ran the command: has it without being contacted
};

// Whether a process forked after its parent ran the command has it too: a
// patch or a revert is in the memory a fork copies; what a command asks
// (history, a dry run) is not.
enum class ForkedChildren { contacted, inherit };

// How many members of a tree ended each way.
struct OutcomeCounts {
  int done = 0;
  int confirmed = 0;
  int failed = 0;
  int lacks_module = 0;
  int exited = 0;
  int not_reached = 0;
  int inherited = 0;

  void add(MemberOutcome outcome);
  int running_it() const { return done + confirmed + inherited; }
  int alive_with_module() const { return done + confirmed + inherited + failed; }
};

struct TreeMember {
  int pid = 0;
  int code = 1;  // the command's own exit code for this process
  MemberOutcome outcome = MemberOutcome::failed;
  std::string output;  // what the command printed for this process
  std::string errors;  // ... and on stderr
  nlohmann::json document;
};

// The command for one process: prints to std::cout (captured per member),
// fills `document`, and says how it went. `exited` and `lacks_module` are
// decided by the runner from the process's state and the document's
// "lacks_module" flag (`not_reached` from "not_reached"), `confirmed` from its "already_live" flag, so commands
// need not know about trees.
using TreeCommand = std::function<int(int pid, nlohmann::json& document)>;

// Ancestors first: `root`, then every Python process below it, listed again
// after each pass until a pass finds no process it has not run on (bounded
// by `k_max_passes`). A process that exits during the command is retried
// never and reported as exited. With ForkedChildren::inherit, a process
// forked after its parent ran the command (done or confirmed) is counted as
// `inherited` without being contacted: a recycled worker's short life is not
// spent on an attach, and no attach stalls it.
std::vector<TreeMember> run_over_tree(int root, const TreeCommand& command,
                                      ForkedChildren children = ForkedChildren::contacted);

// The exit status of a tree command: 1 when any process failed or none has
// the module; 0 when every process alive at the end that has the module runs
// it and one of them was changed; else what a process that already ran it
// answered (reload METHOD says its source has not changed: 1).
int tree_exit_code(const std::vector<TreeMember>& members);

// Prints each member's output under "== process N" and a last line that
// counts how it went ("3 processes run it; 1 exited during the command").
void print_tree(const std::vector<TreeMember>& members, const std::string& what);

nlohmann::json tree_to_json(const std::vector<TreeMember>& members);

// A new tree-wide label ("t-" and 8 hex digits): the one id a `--tree`
// command gives its patch in every process (PROTOCOL.md, "revert").
std::string make_tree_label();

// Whether `word` is a patch label (a tree's or a bundle's) rather than a
// per-process patch id (a number).
bool is_patch_label(const std::string& word);

}  // namespace pyhot::cli

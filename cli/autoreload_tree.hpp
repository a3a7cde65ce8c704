// Internal to autoreload: a save applied to every Python process of a tree
// (`autoreload --tree`, `run --autoreload` over a pre-fork server), as one
// labelled patch, with what it did said once for the tree.
#pragma once

#include <memory>
#include <string>

#include "cli/autoreload_output.hpp"
#include "loader/agent_client.hpp"

namespace pyhot::cli {

struct TreeSave {
  int root = 0;
  std::string path;  // real path of the saved file
  std::string text;  // what was read of it
  bool force = false;
};

// Prints the changes once (from the first process that applied them), each
// failure, and one line for the tree ("in 3 of 3 processes ..."). True when
// every process alive at the end that has the module runs the save.
bool apply_save_over_tree(const TreeSave& save, const AutoreloadOutput& output);

// The agent of the first Python process below `root` that answers: where a
// master never imported the application (no --preload), its workers say
// which files to watch. Null when none answers.
std::unique_ptr<loader::AgentClient> first_worker_agent(int root, bool force);

}  // namespace pyhot::cli

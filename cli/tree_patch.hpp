// One patch is one id across a process tree: the label a `--tree` command
// (or a bundle) gives the apply it makes in every process, history grouped
// by it, revert by it, and the note when workers forked from now on would
// import a file that is not the code live in the tree.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/process_tree.hpp"

namespace pyhot::cli {

// Runs an applying command over the tree (its applies carry `label`);
// prints the tree, the one command that undoes the patch everywhere and,
// when the master lacks the module and a process failed, what new workers
// will run. Returns the tree's exit code. `file`, when known, is the file
// whose text the command applies: when every process that had its module
// exited during the command and the ones alive have not imported it, they
// will import that file, which holds the applied text if it is unchanged
// since the command started: done (0), with a note saying so.
int run_labelled_over_tree(int root, const std::string& label, bool dry_run, bool json_output, const std::string& what,
                           const TreeCommand& command, const std::string& file = {});

// `history --tree`: each labelled patch once, with the processes it reached
// (and its id in each), then each process's patches of its own.
int run_tree_history(const ProcessOptions& options);

// `revert [--tree] LABEL`, and `revert --tree [ID]` (the label of the root's
// patch ID, or of its newest patch still applied).
int run_label_revert(const ProcessOptions& options);

}  // namespace pyhot::cli

// Internal to watcher/: the one walk over a directory tree, shared by
// FileWatcher::watch() and find_files().
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "watcher/file_watcher.hpp"

namespace pyhot::watcher {

// Below `root` (which the caller has entered): `enter(directory)` is asked
// for every subdirectory the filter does not skip, symbolic links not
// followed, and says whether to look inside it; wanted files are appended
// to `files` when it is not null. Entries that vanish or cannot be read are
// passed over: they are not a reason to fail the whole tree.
void walk_below(const std::string& root, const WatchFilter& filter,
                const std::function<bool(const std::string& directory)>& enter, std::vector<std::string>* files);

}  // namespace pyhot::watcher

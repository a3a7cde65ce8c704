// Watches files and directory trees and reports each file once its burst
// of events has settled, whichever way an editor saved it. Which files
// count and which directories are skipped is the caller's to say.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace pyhot::watcher {

class Backend;

struct FileEvent {
  enum class Kind {
    changed,   // the file exists and its content may differ from before
    deleted,   // the file is gone (and stayed gone for the whole debounce)
    overflow,  // the kernel dropped events: every watched file may have changed
  };
  Kind kind = Kind::changed;
  std::string path;  // absolute; empty for overflow
};

// Names, not paths. An empty function: every file counts, no directory is skipped.
struct WatchFilter {
  std::function<bool(const std::string& name)> wanted_file;
  std::function<bool(const std::string& name)> skipped_directory;

  bool wants_file(const std::string& name) const { return !wanted_file || wanted_file(name); }
  bool skips_directory(const std::string& name) const { return skipped_directory && skipped_directory(name); }
};

// True for names editors use for swap, backup, lock and probe files
// (vim's `.x.swp` and `4913`, `x~`, emacs's `.#x`): never a saved file.
bool is_editor_scratch_name(const std::string& name);

// Every wanted file at or below `root` (a directory; symbolic links to
// directories are not followed), in name order within each directory: the
// files a recursive watch() of `root` covers.
std::vector<std::string> find_files(const std::string& root, const WatchFilter& filter);

struct FileWatcherOptions {
  // A file is reported after this long without further events for it: one
  // save is several events (truncate, write, close; or create, rename).
  std::chrono::milliseconds debounce{20};
  WatchFilter filter;
};

class FileWatcher {
 public:
  static Result<std::unique_ptr<FileWatcher>> create(FileWatcherOptions options);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // A directory: every wanted file below it, including in directories
  // created later (recursive), or only its own files (flat). A file: that
  // file, through its directory, so atomic saves and re-creation are seen.
  enum class Depth { recursive, flat };
  Result<Done> watch(const std::string& path, Depth depth = Depth::recursive);

  // Waits at most `timeout` for settled files and returns them (possibly
  // none), oldest first. Returns early after interrupt().
  std::vector<FileEvent> wait(std::chrono::milliseconds timeout);

  // Makes a wait() in progress (or the next one) return at once.
  // Async-signal-safe: meant for SIGINT/SIGCHLD handlers.
  void interrupt() const;

  std::size_t watched_directories() const { return m_directories.size(); }

 private:
  struct Directory {
    std::string path;
    bool recursive = false;
    bool all_names = false;  // else only `names` (single files watched through their directory)
    std::set<std::string> names;
  };
  struct Pending {
    std::chrono::steady_clock::time_point last_event;
    std::uint64_t order = 0;
    bool writing = false;  // modified and not closed yet: a writer may still be at it
  };

  FileWatcher(std::unique_ptr<Backend> backend, FileWatcherOptions options);
  Result<Done> add_directory(const std::string& path, bool recursive, const std::string& only_name,
                             std::vector<std::string>* found);
  Result<bool> add_one_directory(const std::string& path, bool recursive, const std::string& only_name);
  void forget_directory_tree(const std::string& path);
  void read_events(std::chrono::steady_clock::time_point now);
  bool wanted_in(const Directory& directory, const std::string& name) const;
  void touch(const std::string& path, std::chrono::steady_clock::time_point now, bool writing);
  std::chrono::steady_clock::time_point settles_at(const Pending& pending) const;
  std::vector<FileEvent> take_settled(std::chrono::steady_clock::time_point now);

  std::unique_ptr<Backend> m_backend;
  FileWatcherOptions m_options;
  std::map<int, Directory> m_directories;    // by the backend's id
  std::map<std::string, int> m_descriptors;  // directory path → the backend's id
  std::map<std::string, Pending> m_pending;  // file path → its latest event
  std::uint64_t m_next_order = 0;
  bool m_overflowed = false;
};

}  // namespace pyhot::watcher

// Internal to watcher/: what the FileWatcher needs from the operating
// system, one backend per file (inotify.cpp), as watchman keeps its own.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace pyhot::watcher {

// One thing the kernel said about a watched directory.
struct DirectoryEvent {
  enum class Kind {
    file,               // `name` was written, created, moved in or out, or deleted
    directory_added,    // a subdirectory `name` was created or moved in
    directory_removed,  // a subdirectory `name` was deleted or moved out
    watch_removed,      // the watched directory itself is gone: its id is free again
    overflow,           // events were dropped
  };
  Kind kind = Kind::file;
  int directory = -1;  // the id add_directory() gave; -1 for overflow
  std::string name;
  bool writing = false;  // file: modified and not closed (yet)
};

class Backend {
 public:
  enum class Wake { ready, interrupted, failed };

  virtual ~Backend() = default;

  // An id for the directory's events; watching a directory again gives the same id.
  virtual Result<int> add_directory(const std::string& path) = 0;
  virtual void remove_directory(int id) = 0;
  // Every event already queued, without blocking.
  virtual std::vector<DirectoryEvent> drain() = 0;
  // Blocks until events are queued, interrupt() is called, or `timeout` passes (ready).
  virtual Wake wait(std::chrono::milliseconds timeout) = 0;
  // Async-signal-safe.
  virtual void interrupt() const = 0;
};

Result<std::unique_ptr<Backend>> make_inotify_backend();

}  // namespace pyhot::watcher

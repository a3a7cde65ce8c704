// One typed call per agent operation, over any AgentChannel: the only code
// that knows the operations' names and their JSON fields (loader/PROTOCOL.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loader/agent_client.hpp"
#include "util/result.hpp"

namespace pyhot::loader {

enum class Op {
  ping,
  modules,
  locate,
  module_for_file,
  snapshot,
  apply,
  history,
  revert,
  stop,
  prove_baseline,
  instrument,
  instrument_read,
  instrument_remove,
  stack,
  inspect,
  instances,
  instrument_events,
  instrument_list,
};

struct OpEntry {
  Op op;
  std::string_view name;  // as on the wire and as PROTOCOL.md's headings
};

std::span<const OpEntry> all_ops();
std::string_view to_string(Op op);

// What became of one unit of an apply.
enum class Status {
  applied,           // the change is live
  unchanged,         // the live code already equals it (first touch)
  missing,           // probe: the live object does not exist
  freevars_changed,  // probe: the live code closes over other names
  would_apply,       // dry run
  fields_changed,    // probe: a live class's members (an Enum's) are not its body's
  kept,              // the CLI's own: a removed statement whose effect stays in the live module
};

struct StatusEntry {
  Status status;
  std::string_view word;  // on the wire and in --json
  bool from_agent;        // the agent returns it (its STATUSES tuple)
};

std::span<const StatusEntry> all_statuses();
std::string_view to_string(Status status);
std::optional<Status> status_from_string(std::string_view word);

struct PingReply {
  int pid = 0;
  std::string python;  // "3.11.7"
  std::string agent;   // the agent's version
};

struct LoadedModule {
  std::string name;
  std::string file;
  bool operator==(const LoadedModule&) const = default;
};

struct LiveSnapshot {
  std::optional<std::string> hash;
  std::optional<std::string> text;
  bool exists() const { return hash.has_value() || text.has_value(); }
};

struct ModuleForFile {
  std::string module;                // the preferred match
  std::vector<std::string> modules;  // every match
  // The preferred match's snapshot as snapshot_hash gives it, when asked
  // for and the agent has the field (one request less under contention).
  std::optional<LiveSnapshot> snapshot;
};

struct UnitScope {
  std::string name;
  bool is_class = false;
};

// One unit as the agent compiles it (PROTOCOL.md, "apply"). Verdict and kind
// are words because the loader does not know Python's definitions.
struct UnitRequest {
  std::string qualname;
  std::string name;
  std::string kind;
  std::string verdict;
  std::vector<UnitScope> scopes;
  std::string source;
  std::uint32_t first_line = 1;
  int line_delta = 0;
  std::vector<std::string> targets;
  std::string accessor;
  bool only_if_missing = false;
  bool duplicate = false;    // swap, relocate: the file defines this qualname more than once
  bool conditional = false;  // the file may not bind it: absent live means unchanged
};

// What the agent records as the module's live text after an apply.
struct SnapshotRecord {
  enum class Kind {
    sent_text,  // the `source` of the request (nothing extra crosses the socket)
    this_text,  // `text`: only part of the file became live
    nothing,    // keep what was recorded before
  };
  Kind kind = Kind::sent_text;
  std::string text;

  static SnapshotRecord sent() { return {}; }
  static SnapshotRecord none() { return {Kind::nothing, {}}; }
  static SnapshotRecord of(std::string text) { return {Kind::this_text, std::move(text)}; }
  bool operator==(const SnapshotRecord&) const = default;
};

// The new text as one edit of the recorded snapshot: its lines [start, end)
// (0-based, split as Python's str.splitlines) replaced by `text`.
struct SourceEdit {
  std::string base;  // the snapshot's hash, as the agent reported it
  std::size_t start = 0;
  std::size_t end = 0;
  std::string text;
  std::size_t length = 0;  // of the whole new text
  bool operator==(const SourceEdit&) const = default;
};

// What the agent holds as live for a module: its hash (the client's XXH3 of
// the text, given when it was recorded) and, when asked or when it has no
// hash, the text.
struct ApplyRequest {
  std::string module;
  std::string file;
  std::string source;                     // the whole new file text, unless source_edit says it
  std::optional<SourceEdit> source_edit;  // instead of `source`: what changed
  std::string snapshot_hash;              // of the text recorded as live ("" none)
  std::vector<std::string> future_flags;
  bool dry_run = false;
  bool verify = false;  // first touch: compare with the live code, report `unchanged`
  std::vector<UnitRequest> units;
  SnapshotRecord snapshot;
  std::optional<SourceEdit> snapshot_edit;  // instead of snapshot's this_text: what differs from the recorded text
};

struct UnitResult {
  Status status = Status::applied;
  std::string message;  // e.g. closures that keep the old code
  // First-touch probe: the live code is the file's moved by this many lines
  // (0: not moved), and whether the live name holds a decorator's result
  // rather than the function itself (unset: not a function compared).
  int line_delta = 0;
  std::optional<bool> wrapped;
  // The module-level function that made that decorator's result (its code
  // is nested in that function's), or empty.
  std::string made_by;
};

struct ApplyReply {
  std::optional<int> patch;         // null when nothing changed or on a dry run
  std::vector<UnitResult> results;  // one per unit, in the request's order
  // First-touch probe: qualnames of live functions and classes this file's
  // statements made that no unit named (the file no longer defines them).
  std::vector<std::string> absent;
};

struct PatchChange {
  std::string qualname;
  std::string verdict;
};

struct PatchRecord {
  int id = 0;
  double time = 0;  // unix seconds
  std::string module;
  std::string file;
  bool reverted = false;
  std::vector<PatchChange> changes;
  std::string label;  // "" when the patch was applied without one
};

// A diagnostic's instrumentation active in the process (profile, watch):
// listed by `history` while it lasts.
struct ActiveInstrumentation {
  int session = 0;
  std::string kind;
  double started = 0;  // unix seconds
  double lease_seconds = 0;
  std::vector<std::string> functions;  // module.qualname
};

struct RevertedPatch {
  int id = 0;
  std::string module;
  std::string file;
};

struct RevertReply {
  int reverted = 0;  // the patch id (the newest one of a label); 0: the label's were reverted already
  std::vector<PatchChange> changes;
  std::vector<std::string> kept;  // names the patch added: still bound for code that runs
  std::vector<RevertedPatch> patches;
};

// Instrumentation (PROTOCOL.md, "instrument"): per function, the text a
// fresh import compiles (`unit.source`, checked against the live code) and
// the same text with probe lines inserted, with the real line of each line.
struct LineProbeRequest {
  std::uint32_t line = 0;   // real line of the statement the probe runs before
  std::uint32_t scope = 0;  // real `def` line of the function that holds it
  int probe = 0;
};

struct VariableProbeRequest {
  std::string name;
  std::uint32_t scope = 0;
  int probe = 0;
};

// A function of the unit whose lines are timed (kind `lines`): the agent
// inserts the timer's calls into its syntax tree.
struct LineTimingRequest {
  std::uint32_t scope = 0;  // real `def` line of the function
  int probe = 0;
};

struct InstrumentedUnitRequest {
  UnitRequest unit;
  std::string instrumented;
  std::vector<std::uint32_t> lines;
  // Probes the agent inserts into the syntax tree (`instrumented` then
  // equals the plain text).
  std::vector<LineProbeRequest> line_probes;
  std::vector<VariableProbeRequest> variable_probes;
  std::vector<LineTimingRequest> line_timing;
};

struct InstrumentedModule {
  std::string module;
  std::string file;
  std::vector<std::string> future_flags;
  std::vector<InstrumentedUnitRequest> units;
};

// A watch collector's choices (PROTOCOL.md, "instrument"): the filter and
// the expressions are compiled once in the target.
struct WatchOptions {
  std::string filter;              // over the arguments, `_return`, `_exception`; "" for every call
  std::vector<std::string> exprs;  // printed instead of the arguments and return value
  std::int64_t limit = 0;          // stop after this many matching calls; 0: no limit
  bool exceptions = false;         // only calls that raised
  int depth = 3;                   // of reprs
  int length = 120;                // of each repr
};

// A line probe's choices (`probe`) and a trace's.
struct ProbeOptions {
  std::vector<std::string> prints;
  bool locals = false;
  std::string code;
  std::string filter;
  std::int64_t limit = 0;
  int depth = 3;
  int length = 120;
};

struct TraceOptions {
  std::int64_t limit = 0;
  double min_ms = 0;
  int depth = 20;
};

struct InstrumentRequest {
  std::string kind = "profile";  // the collector
  std::optional<WatchOptions> watch;
  std::optional<ProbeOptions> probe;
  std::optional<TraceOptions> trace;
  double lease_seconds = 5;  // removed by the agent unless read again within this
  std::string marker;        // probe constants are "<marker>:<probe id>"
  std::vector<InstrumentedModule> modules;
};

struct SkippedUnit {
  std::string module;
  std::string qualname;
  std::string message;  // why its live code was left alone
};

struct InstrumentReply {
  int session = 0;
  int pid = 0;
  int functions = 0;  // live functions swapped
  std::vector<SkippedUnit> skipped;
};

// A profile collector's call tree: one node per caller edge among the
// probed functions (recursion folded), times in seconds.
struct ProfileNode {
  int probe = 0;
  std::int64_t hits = 0;
  double total = 0;
  double max = 0;
  double self = 0;
  std::int64_t raised = 0;
  std::vector<ProfileNode> children;
};

struct ProfileThread {
  std::int64_t id = 0;
  std::string name;
  std::vector<ProfileNode> calls;
};

// A `lines` collector's counts: per line of a timed function (all threads
// added up), the times it started and the seconds until the next line
// started or the function returned.
struct TimedLine {
  std::uint32_t line = 0;  // real line
  std::int64_t hits = 0;
  double total = 0;
};

struct LineTimedFunction {
  int probe = 0;
  std::int64_t calls = 0;
  std::vector<TimedLine> lines;  // by line, those that ran
};

struct ProfileData {
  std::vector<ProfileThread> threads;
  std::vector<LineTimedFunction> line_functions;  // kind `lines`
  std::int64_t lost = 0;                          // frames the collector could not pair (should stay 0)
  double started = 0;                             // unix seconds
  double ended = 0;
};

struct InstrumentReadReply {
  int session = 0;
  int pid = 0;
  ProfileData data;
  std::vector<std::string> changed;  // remove: functions whose code was replaced meanwhile (kept)
};

// Read-only views (PROTOCOL.md, "stack", "inspect", "instances").
struct StackFrame {
  std::string file;
  int line = 0;
  std::string function;  // co_qualname (co_name before 3.11)
  std::string text;      // the line's text, stripped; "" when the file cannot be read
  std::vector<std::pair<std::string, std::string>> locals;  // name, bounded repr (--locals)
};

struct ThreadStack {
  std::int64_t ident = 0;
  std::optional<long> native_id;
  std::string name;
  std::optional<bool> daemon;  // none for a thread threading did not start
  bool main = false;
  std::vector<StackFrame> frames;  // innermost last
};

struct TaskStack {
  std::string name;
  std::string loop;  // the loop's address, to group tasks by loop
  std::optional<std::int64_t> loop_thread;
  std::string coroutine;
  std::string awaiting;            // "" when it waits on nothing
  std::vector<StackFrame> frames;  // the await chain, outermost first
};

struct StackRequest {
  bool tasks = false;
  bool locals = false;
};

struct StackReply {
  int pid = 0;
  std::vector<ThreadStack> threads;
  std::vector<TaskStack> tasks;
};

// A value as a tree: its members to the depth asked (a container's items,
// a module's globals, a class's or instance's attributes).
struct ValueView {
  std::string name;  // "" at the root
  std::string type;
  std::string repr;
  std::optional<std::int64_t> count;  // members it has (more than shown when bounded)
  std::vector<ValueView> members;
};

struct InspectRequest {
  std::string path;  // MODULE[.NAME.ATTR...]
  std::optional<std::string> expr;
  int depth = 1;
};

struct InspectReply {
  std::string path;
  ValueView value;
};

struct InstancesRequest {
  std::string class_path;  // MODULE.CLASS
  int limit = 20;
  std::optional<std::string> expr;
  double time_limit = 2;
};

struct InstanceView {
  std::string id;  // its address
  std::string type;
  std::optional<std::string> value;                             // of --expr
  std::vector<std::pair<std::string, std::string>> attributes;  // without --expr
};

struct InstancesReply {
  std::string class_path;
  std::int64_t count = 0;
  std::vector<InstanceView> instances;
  std::optional<std::int64_t> scanned;  // objects walked (none: found through gc.get_referrers)
  bool complete = true;                 // false: stopped at the time limit
  double seconds = 0;
};

// One event of a watch, a line probe or a trace (PROTOCOL.md,
// "instrument_events"); the fields its kind gives, the others empty.
struct RaisedException {
  std::string type;
  std::string message;
  std::vector<std::string> traceback;
};

struct TraceNode {
  std::string name;   // module.qualname
  std::string where;  // file:line of the def
  double duration = 0;
  std::vector<TraceNode> children;
};

using NamedValues = std::vector<std::pair<std::string, std::string>>;  // name or expression, bounded repr

struct InstrumentEvent {
  std::int64_t sequence = 0;
  int probe = 0;
  double time = 0;  // unix seconds, at the call or the line
  std::int64_t thread = 0;
  std::string thread_name;
  // watch and trace
  double duration = 0;  // seconds
  NamedValues args;
  std::optional<std::string> returned;  // none when it raised
  std::optional<RaisedException> exception;
  NamedValues exprs;
  // probe
  int line = 0;
  NamedValues locals;
  NamedValues prints;
  std::vector<std::string> output;   // what --code printed
  std::string code_error;            // what --code raised
  std::optional<std::string> value;  // --var: the value assigned
  // trace
  std::optional<TraceNode> tree;
  std::int64_t omitted = 0;  // calls not kept (the tree's node limit)
  std::string raised;        // the traced call's exception type
};

struct InstrumentEvents {
  std::vector<InstrumentEvent> events;
  std::int64_t cursor = 0;  // read from here next time
  std::int64_t lost = 0;    // events the ring dropped before this read
  std::int64_t matched = 0;
  bool done = false;  // the limit was reached and every event read
  std::int64_t filter_errors = 0;
  std::string filter_error;  // the first
  std::int64_t errors = 0;   // the probe's own failures (should stay 0)
  std::string error;
  std::vector<std::string> replaced;  // functions a reload gave new code (no probe)
};

class Agent {
 public:
  explicit Agent(AgentChannel& channel) : m_channel(channel) {}

  // Every apply made through this Agent from now on carries `label`, the
  // patch's one id across a process tree (PROTOCOL.md, "revert").
  void label_patches(std::string label) { m_patch_label = std::move(label); }

  Result<PingReply> ping();
  Result<std::vector<LoadedModule>> modules();
  // The module's file (absolute, real path); not_found when it is not loaded.
  Result<std::string> locate(const std::string& module);
  Result<ModuleForFile> module_for_file(const std::string& file, bool with_snapshot = false);
  // The text the agent knows to be live, or none when pyhot never patched the module.
  Result<std::optional<std::string>> snapshot(const std::string& module);
  // Its hash only (the text too when the agent has no hash for it).
  Result<LiveSnapshot> snapshot_hash(const std::string& module);
  Result<ApplyReply> apply(const ApplyRequest& request);
  // The index of the first candidate text that compiles, in the target, to
  // exactly the module's live code (then recorded as its snapshot); none
  // when no candidate is proven. Nothing is executed.
  // `bytecode_cache`, when none is proven: what the module's .pyc proved
  // instead (the live code is its compilation of an older file), else "".
  Result<std::optional<std::size_t>> prove_baseline(const std::string& module,
                                                    const std::vector<std::string>& candidates,
                                                    std::string* bytecode_cache = nullptr);
  // `active`, when given, gets the instrumentations active meanwhile.
  Result<std::vector<PatchRecord>> history(std::vector<ActiveInstrumentation>* active = nullptr);
  // nullopt: the newest patch still applied.
  Result<RevertReply> revert(std::optional<int> patch);
  // Every patch still applied that carries `label`; not_found when none has it.
  Result<RevertReply> revert_label(const std::string& label);
  Result<Done> stop();
  // Swaps every unit's instrumented code in, all or nothing.
  Result<InstrumentReply> instrument(const InstrumentRequest& request);
  // The data so far; renews the lease.
  // Renews the lease; with_data: and returns what was collected so far
  // (a whole profile's worth of nodes, built while the target waits).
  Result<InstrumentReadReply> instrument_read(int session, bool with_data = true);
  // Puts the original code objects back; the final data.
  Result<InstrumentReadReply> instrument_remove(int session);
  // Every thread's Python stack (pyhot's own threads left out) and, when
  // asked, every asyncio task with its await chain.
  Result<StackReply> stack(const StackRequest& request);
  Result<InspectReply> inspect(const InspectRequest& request);
  Result<InstancesReply> instances(const InstancesRequest& request);
  // A watch's events after `cursor`; renews the lease.
  Result<InstrumentEvents> instrument_events(int session, std::int64_t cursor);
  // The instrumentations active now.
  Result<std::vector<ActiveInstrumentation>> instrument_list();

 private:
  AgentChannel& m_channel;
  std::string m_patch_label;
};

}  // namespace pyhot::loader

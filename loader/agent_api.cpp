#include "loader/agent_api.hpp"

#include <array>

#include <nlohmann/json.hpp>

#include "loader/agent_source.hpp"

namespace pyhot::loader {

using nlohmann::json;

namespace {

constexpr std::array k_ops{
    OpEntry{Op::ping, "ping"},
    OpEntry{Op::modules, "modules"},
    OpEntry{Op::locate, "locate"},
    OpEntry{Op::module_for_file, "module_for_file"},
    OpEntry{Op::snapshot, "snapshot"},
    OpEntry{Op::apply, "apply"},
    OpEntry{Op::history, "history"},
    OpEntry{Op::revert, "revert"},
    OpEntry{Op::stop, "stop"},
    OpEntry{Op::prove_baseline, "prove_baseline"},
    OpEntry{Op::instrument, "instrument"},
    OpEntry{Op::instrument_read, "instrument_read"},
    OpEntry{Op::instrument_remove, "instrument_remove"},
    OpEntry{Op::stack, "stack"},
    OpEntry{Op::inspect, "inspect"},
    OpEntry{Op::instances, "instances"},
    OpEntry{Op::instrument_events, "instrument_events"},
    OpEntry{Op::instrument_list, "instrument_list"},
};

constexpr std::array k_statuses{
    StatusEntry{Status::applied, "applied", true},
    StatusEntry{Status::unchanged, "unchanged", true},
    StatusEntry{Status::missing, "missing", true},
    StatusEntry{Status::freevars_changed, "freevars_changed", true},
    StatusEntry{Status::would_apply, "would_apply", true},
    StatusEntry{Status::fields_changed, "fields_changed", true},
    StatusEntry{Status::kept, "kept", false},
};

// Sends one operation and decodes its reply; a reply without the fields
// the protocol promises is a protocol error, never an exception.
// An agent started by another pyhot build (one from before an operation was
// added, usually) answers "unknown op": named with both versions and the
// way out, since the agent in a process is the one that first attached.
Error unknown_to_the_running_agent(AgentChannel& channel, Op op, Error error) {
  if (error.kind != ErrorKind::protocol || !error.message.starts_with("unknown op") || op == Op::ping) {
    return error;
  }
  auto ping = channel.request(std::string(to_string(Op::ping)), json::object());
  if (!ping || !ping->is_object()) {
    return error;
  }
  std::string pid = std::to_string(ping->value("pid", 0));
  return make_error(ErrorKind::refused,
                    "process " + pid + " runs an agent from another pyhot build (agent " +
                        ping->value("agent", std::string("of an unknown version")) + ", this pyhot " +
                        std::string(agent_version()) + ") that does not know the operation '" +
                        std::string(to_string(op)) +
                        "'; use the pyhot that first attached to it, or restart the process so that this "
                        "pyhot starts its own agent there");
}

template <typename Reply, typename Decode>
Result<Reply> call(AgentChannel& channel, Op op, json arguments, Decode decode) {
  auto response = channel.request(std::string(to_string(op)), std::move(arguments));
  if (!response) {
    return unknown_to_the_running_agent(channel, op, response.error());
  }
  try {
    return Reply(decode(*response));
  } catch (const json::exception& error) {
    return make_error(ErrorKind::protocol,
                      "the agent's reply to " + std::string(to_string(op)) + " is malformed: " + error.what());
  } catch (const Error& error) {
    return error;
  }
}

json to_json(const UnitRequest& unit) {
  json scopes = json::array();
  for (const auto& scope : unit.scopes) {
    scopes.push_back({{"name", scope.name}, {"kind", scope.is_class ? "class" : "function"}});
  }
  json document = {{"qualname", unit.qualname},
                   {"name", unit.name},
                   {"kind", unit.kind},
                   {"verdict", unit.verdict},
                   {"scopes", scopes},
                   {"source", unit.source},
                   {"first_line", unit.first_line},
                   {"line_delta", unit.line_delta},
                   {"targets", unit.targets}};
  if (!unit.accessor.empty()) {
    document["accessor"] = unit.accessor;
  }
  if (unit.only_if_missing) {
    document["only_if_missing"] = true;
  }
  if (unit.conditional) {
    document["conditional"] = true;
  }
  if (unit.duplicate) {
    document["duplicate"] = true;
  }
  return document;
}

json edit_json(const SourceEdit& edit) {
  return {{"base", edit.base}, {"start", edit.start}, {"end", edit.end}, {"text", edit.text}, {"length", edit.length}};
}

std::vector<PatchChange> patch_changes(const json& changes) {
  std::vector<PatchChange> out;
  for (const auto& change : changes) {
    out.push_back({change.at("qualname").get<std::string>(), change.at("verdict").get<std::string>()});
  }
  return out;
}

RevertReply revert_reply(const json& reply) {
  RevertReply out{reply.value("reverted", 0),
                  patch_changes(reply.at("changes")),
                  reply.value("kept", std::vector<std::string>{}),
                  {}};
  if (reply.contains("patches") && reply["patches"].is_array()) {
    for (const auto& patch : reply["patches"]) {
      out.patches.push_back({patch.value("id", 0), patch.value("module", ""), patch.value("file", "")});
    }
  }
  return out;
}

UnitResult unit_result(const json& result) {
  UnitResult out;
  if (result.contains("status") && result["status"].is_string()) {
    auto word = result["status"].get<std::string>();
    auto status = status_from_string(word);
    if (!status) {
      throw make_error(ErrorKind::protocol, "the agent reported an unknown status '" + word + "'");
    }
    out.status = *status;
  }
  if (result.contains("message") && result["message"].is_string()) {
    out.message = result["message"].get<std::string>();
  }
  if (result.contains("line_delta") && result["line_delta"].is_number_integer()) {
    out.line_delta = result["line_delta"].get<int>();
  }
  if (result.contains("wrapped") && result["wrapped"].is_boolean()) {
    out.wrapped = result["wrapped"].get<bool>();
  }
  if (result.contains("made_by") && result["made_by"].is_string()) {
    out.made_by = result["made_by"].get<std::string>();
  }
  return out;
}

ProfileNode profile_node(const json& node) {
  ProfileNode out;
  out.probe = node.at("id").get<int>();
  out.hits = node.at("hits").get<std::int64_t>();
  out.total = node.at("total").get<double>();
  out.max = node.at("max").get<double>();
  out.self = node.at("self").get<double>();
  out.raised = node.value("raised", std::int64_t{0});
  if (node.contains("children")) {
    for (const auto& child : node["children"]) {
      out.children.push_back(profile_node(child));
    }
  }
  return out;
}

InstrumentReadReply read_reply(const json& reply) {
  InstrumentReadReply out;
  out.session = reply.at("session").get<int>();
  out.pid = reply.at("pid").get<int>();
  if (reply.contains("changed")) {
    out.changed = reply["changed"].get<std::vector<std::string>>();
  }
  if (!reply.contains("data")) {
    return out;  // a lease renewal
  }
  const auto& data = reply.at("data");
  for (const auto& thread : data.at("threads")) {
    ProfileThread one{thread.at("id").get<std::int64_t>(), thread.at("name").get<std::string>(), {}};
    for (const auto& node : thread.at("calls")) {
      one.calls.push_back(profile_node(node));
    }
    out.data.threads.push_back(std::move(one));
  }
  for (const auto& function : data.value("functions", json::array())) {
    LineTimedFunction one{function.at("id").get<int>(), function.at("calls").get<std::int64_t>(), {}};
    for (const auto& line : function.at("lines")) {
      one.lines.push_back({line.at(0).get<std::uint32_t>(), line.at(1).get<std::int64_t>(), line.at(2).get<double>()});
    }
    out.data.line_functions.push_back(std::move(one));
  }
  out.data.lost = data.value("lost", std::int64_t{0});
  out.data.started = data.value("started", 0.0);
  out.data.ended = data.value("ended", 0.0);
  return out;
}

std::vector<std::pair<std::string, std::string>> string_pairs(const json& object) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : object.items()) {
    out.emplace_back(key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

std::vector<StackFrame> stack_frames(const json& frames) {
  std::vector<StackFrame> out;
  for (const auto& frame : frames) {
    StackFrame one{frame.at("file").get<std::string>(),
                   frame.at("line").get<int>(),
                   frame.at("function").get<std::string>(),
                   frame.value("text", ""),
                   {}};
    if (frame.contains("locals") && frame["locals"].is_object()) {
      one.locals = string_pairs(frame["locals"]);
    }
    out.push_back(std::move(one));
  }
  return out;
}

StackReply stack_reply(const json& reply) {
  StackReply out;
  out.pid = reply.at("pid").get<int>();
  for (const auto& thread : reply.at("threads")) {
    ThreadStack one;
    one.ident = thread.at("ident").get<std::int64_t>();
    if (thread.contains("native_id") && thread["native_id"].is_number_integer()) {
      one.native_id = thread["native_id"].get<long>();
    }
    one.name = thread.at("name").get<std::string>();
    if (thread.contains("daemon") && thread["daemon"].is_boolean()) {
      one.daemon = thread["daemon"].get<bool>();
    }
    one.main = thread.value("main", false);
    one.frames = stack_frames(thread.at("frames"));
    out.threads.push_back(std::move(one));
  }
  if (reply.contains("tasks")) {
    for (const auto& task : reply["tasks"]) {
      TaskStack one;
      one.name = task.at("name").get<std::string>();
      one.loop = task.value("loop", "");
      if (task.contains("loop_thread") && task["loop_thread"].is_number_integer()) {
        one.loop_thread = task["loop_thread"].get<std::int64_t>();
      }
      one.coroutine = task.value("coroutine", "");
      one.awaiting = task.value("awaiting", "");
      one.frames = stack_frames(task.at("frames"));
      out.tasks.push_back(std::move(one));
    }
  }
  return out;
}

ValueView value_view(const json& value) {
  ValueView out{value.value("name", ""),
                value.at("type").get<std::string>(),
                value.at("repr").get<std::string>(),
                std::nullopt,
                {}};
  if (value.contains("count") && value["count"].is_number_integer()) {
    out.count = value["count"].get<std::int64_t>();
  }
  if (value.contains("members")) {
    for (const auto& member : value["members"]) {
      out.members.push_back(value_view(member));
    }
  }
  return out;
}

std::string text_or_empty(const json& document, const char* name) {
  auto found = document.find(name);
  return found != document.end() && found->is_string() ? found->get<std::string>() : std::string{};
}

NamedValues named_values(const json& document, const char* name) {
  NamedValues out;
  if (document.contains(name)) {
    for (const auto& pair : document[name]) {
      out.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
    }
  }
  return out;
}

InstancesReply instances_reply(const json& reply) {
  InstancesReply out;
  out.class_path = reply.at("class").get<std::string>();
  out.count = reply.at("count").get<std::int64_t>();
  for (const auto& instance : reply.at("instances")) {
    InstanceView one{instance.at("id").get<std::string>(), instance.at("type").get<std::string>(), std::nullopt, {}};
    if (instance.contains("value") && instance["value"].is_string()) {
      one.value = instance["value"].get<std::string>();
    }
    if (instance.contains("attributes") && instance["attributes"].is_object()) {
      one.attributes = string_pairs(instance["attributes"]);
    }
    out.instances.push_back(std::move(one));
  }
  if (reply.contains("scanned") && reply["scanned"].is_number_integer()) {
    out.scanned = reply["scanned"].get<std::int64_t>();
  }
  out.complete = reply.value("complete", true);
  out.seconds = reply.value("seconds", 0.0);
  return out;
}

TraceNode trace_node(const json& node) {
  TraceNode out{text_or_empty(node, "name"), text_or_empty(node, "where"), node.value("duration", 0.0), {}};
  if (node.contains("children")) {
    for (const auto& child : node["children"]) {
      out.children.push_back(trace_node(child));
    }
  }
  return out;
}

std::optional<std::string> optional_text(const json& document, const char* name) {
  auto found = document.find(name);
  if (found == document.end() || !found->is_string()) {
    return std::nullopt;
  }
  return found->get<std::string>();
}

// The `instrumentations` of a history or instrument_list reply.
std::vector<ActiveInstrumentation> active_instrumentations(const json& list) {
  std::vector<ActiveInstrumentation> out;
  for (const auto& item : list) {
    out.push_back({item.at("session").get<int>(), item.value("kind", ""), item.value("started", 0.0),
                   item.value("lease", 0.0), item.value("functions", std::vector<std::string>{})});
  }
  return out;
}

InstrumentEvent instrument_event(const json& event) {
  InstrumentEvent out;
  out.sequence = event.at("seq").get<std::int64_t>();
  out.probe = event.at("probe").get<int>();
  out.time = event.at("time").get<double>();
  out.thread = event.at("thread").get<std::int64_t>();
  out.thread_name = text_or_empty(event, "thread_name");
  out.duration = event.value("duration", 0.0);
  out.args = named_values(event, "args");
  out.exprs = named_values(event, "exprs");
  out.returned = optional_text(event, "return");
  if (event.contains("exception")) {
    const auto& raised = event["exception"];
    out.exception = RaisedException{text_or_empty(raised, "type"), text_or_empty(raised, "message"),
                                    raised.value("traceback", std::vector<std::string>{})};
  }
  out.line = event.value("line", 0);
  out.locals = named_values(event, "locals");
  out.prints = named_values(event, "prints");
  out.output = event.value("output", std::vector<std::string>{});
  out.code_error = text_or_empty(event, "error");
  out.value = optional_text(event, "value");
  if (event.contains("tree")) {
    out.tree = trace_node(event["tree"]);
  }
  out.omitted = event.value("omitted", std::int64_t{0});
  out.raised = text_or_empty(event, "raised");
  return out;
}

}  // namespace

std::span<const OpEntry> all_ops() { return k_ops; }

std::string_view to_string(Op op) {
  for (const auto& entry : k_ops) {
    if (entry.op == op) {
      return entry.name;
    }
  }
  return "?";
}

std::span<const StatusEntry> all_statuses() { return k_statuses; }

std::string_view to_string(Status status) {
  for (const auto& entry : k_statuses) {
    if (entry.status == status) {
      return entry.word;
    }
  }
  return "?";
}

std::optional<Status> status_from_string(std::string_view word) {
  for (const auto& entry : k_statuses) {
    if (entry.word == word && entry.from_agent) {
      return entry.status;
    }
  }
  return std::nullopt;
}

Result<PingReply> Agent::ping() {
  return call<PingReply>(m_channel, Op::ping, json::object(), [](const json& reply) {
    return PingReply{reply.at("pid").get<int>(), reply.value("python", ""), reply.value("agent", "")};
  });
}

Result<std::vector<LoadedModule>> Agent::modules() {
  return call<std::vector<LoadedModule>>(m_channel, Op::modules, json::object(), [](const json& reply) {
    std::vector<LoadedModule> out;
    for (const auto& module : reply.at("modules")) {
      out.push_back({module.value("name", ""), module.value("file", "")});
    }
    return out;
  });
}

Result<std::string> Agent::locate(const std::string& module) {
  return call<std::string>(m_channel, Op::locate, {{"module", module}},
                           [](const json& reply) { return reply.at("file").get<std::string>(); });
}

namespace {

LiveSnapshot live_snapshot_from(const json& reply) {
  LiveSnapshot out;
  if (reply.contains("hash") && reply["hash"].is_string()) {
    out.hash = reply["hash"].get<std::string>();
  }
  if (reply.contains("source") && reply["source"].is_string()) {
    out.text = reply["source"].get<std::string>();
  }
  return out;
}

}  // namespace

Result<ModuleForFile> Agent::module_for_file(const std::string& file, bool with_snapshot) {
  json arguments = {{"file", file}};
  if (with_snapshot) {
    arguments["snapshot"] = true;
  }
  return call<ModuleForFile>(m_channel, Op::module_for_file, std::move(arguments), [](const json& reply) {
    ModuleForFile out{reply.at("module").get<std::string>(), {}, std::nullopt};
    if (reply.contains("modules") && reply["modules"].is_array()) {
      out.modules = reply["modules"].get<std::vector<std::string>>();
    }
    if (reply.contains("snapshot") && reply["snapshot"].is_object()) {
      out.snapshot = live_snapshot_from(reply["snapshot"]);
    }
    return out;
  });
}

Result<std::optional<std::string>> Agent::snapshot(const std::string& module) {
  return call<std::optional<std::string>>(m_channel, Op::snapshot, {{"module", module}}, [](const json& reply) {
    if (reply.contains("source") && reply["source"].is_string()) {
      return std::optional<std::string>(reply["source"].get<std::string>());
    }
    return std::optional<std::string>();
  });
}

Result<LiveSnapshot> Agent::snapshot_hash(const std::string& module) {
  return call<LiveSnapshot>(m_channel, Op::snapshot, {{"module", module}, {"source", false}},
                            [](const json& reply) { return live_snapshot_from(reply); });
}

Result<std::optional<std::size_t>> Agent::prove_baseline(const std::string& module,
                                                         const std::vector<std::string>& candidates,
                                                         std::string* bytecode_cache) {
  return call<std::optional<std::size_t>>(m_channel, Op::prove_baseline,
                                          {{"module", module}, {"candidates", candidates}}, [&](const json& reply) {
                                            if (bytecode_cache != nullptr) {
                                              *bytecode_cache = reply.value("bytecode_cache", "");
                                            }
                                            if (reply.contains("proven") && reply["proven"].is_number_unsigned()) {
                                              return std::optional<std::size_t>(reply["proven"].get<std::size_t>());
                                            }
                                            return std::optional<std::size_t>();
                                          });
}

Result<ApplyReply> Agent::apply(const ApplyRequest& request) {
  json units = json::array();
  for (const auto& unit : request.units) {
    units.push_back(to_json(unit));
  }
  json arguments = {{"module", request.module},   {"file", request.file},     {"future_flags", request.future_flags},
                    {"dry_run", request.dry_run}, {"verify", request.verify}, {"units", units}};
  if (request.source_edit) {
    arguments["source_edit"] = edit_json(*request.source_edit);
  } else {
    arguments["source"] = request.source;
  }
  if (!request.snapshot_hash.empty()) {
    arguments["snapshot_hash"] = request.snapshot_hash;
  }
  if (!m_patch_label.empty() && !request.dry_run) {
    arguments["label"] = m_patch_label;
  }
  // Not sending the text twice keeps the request (parsed while the target's
  // GIL is held) small: without the field the agent records `source`.
  if (request.snapshot_edit) {
    arguments["snapshot_edit"] = edit_json(*request.snapshot_edit);
  } else if (request.snapshot.kind == SnapshotRecord::Kind::this_text) {
    arguments["snapshot"] = request.snapshot.text;
  } else if (request.snapshot.kind == SnapshotRecord::Kind::nothing) {
    arguments["snapshot"] = nullptr;
  }
  return call<ApplyReply>(m_channel, Op::apply, std::move(arguments), [](const json& reply) {
    ApplyReply out;
    if (reply.contains("patch") && reply["patch"].is_number_integer()) {
      out.patch = reply["patch"].get<int>();
    }
    if (reply.contains("results") && reply["results"].is_array()) {
      for (const auto& result : reply["results"]) {
        out.results.push_back(unit_result(result));
      }
    }
    if (reply.contains("absent") && reply["absent"].is_array()) {
      for (const auto& qualname : reply["absent"]) {
        if (qualname.is_string()) {
          out.absent.push_back(qualname.get<std::string>());
        }
      }
    }
    return out;
  });
}

Result<std::vector<PatchRecord>> Agent::history(std::vector<ActiveInstrumentation>* active) {
  return call<std::vector<PatchRecord>>(m_channel, Op::history, json::object(), [active](const json& reply) {
    if (active != nullptr) {
      *active = active_instrumentations(reply.value("instrumentations", json::array()));
    }
    std::vector<PatchRecord> out;
    for (const auto& patch : reply.at("patches")) {
      out.push_back({patch.value("id", 0), patch.value("time", 0.0), patch.value("module", ""), patch.value("file", ""),
                     patch.value("reverted", false), patch_changes(patch.at("changes")), patch.value("label", "")});
    }
    return out;
  });
}

Result<RevertReply> Agent::revert(std::optional<int> patch) {
  json arguments = json::object();
  if (patch) {
    arguments["patch"] = *patch;
  }
  return call<RevertReply>(m_channel, Op::revert, std::move(arguments), revert_reply);
}

Result<RevertReply> Agent::revert_label(const std::string& label) {
  return call<RevertReply>(m_channel, Op::revert, {{"label", label}}, revert_reply);
}

Result<InstrumentReply> Agent::instrument(const InstrumentRequest& request) {
  json modules = json::array();
  for (const auto& module : request.modules) {
    json units = json::array();
    for (const auto& unit : module.units) {
      json document = to_json(unit.unit);
      document["instrumented"] = unit.instrumented;
      document["lines"] = unit.lines;
      for (const auto& probe : unit.line_probes) {
        document["line_probes"].push_back({{"line", probe.line}, {"scope", probe.scope}, {"probe", probe.probe}});
      }
      for (const auto& probe : unit.variable_probes) {
        document["variable_probes"].push_back({{"name", probe.name}, {"scope", probe.scope}, {"probe", probe.probe}});
      }
      for (const auto& timing : unit.line_timing) {
        document["line_timing"].push_back({{"scope", timing.scope}, {"probe", timing.probe}});
      }
      units.push_back(std::move(document));
    }
    modules.push_back(
        {{"module", module.module}, {"file", module.file}, {"future_flags", module.future_flags}, {"units", units}});
  }
  json arguments = {
      {"kind", request.kind}, {"lease", request.lease_seconds}, {"marker", request.marker}, {"modules", modules}};
  if (request.watch) {
    const auto& watch = *request.watch;
    arguments["watch"] = {{"filter", watch.filter},         {"exprs", watch.exprs}, {"limit", watch.limit},
                          {"exceptions", watch.exceptions}, {"depth", watch.depth}, {"length", watch.length}};
  }
  if (request.probe) {
    const auto& probe = *request.probe;
    arguments["probe"] = {{"prints", probe.prints}, {"locals", probe.locals}, {"code", probe.code},
                          {"filter", probe.filter}, {"limit", probe.limit},   {"depth", probe.depth},
                          {"length", probe.length}};
  }
  if (request.trace) {
    arguments["trace"] = {
        {"limit", request.trace->limit}, {"min_ms", request.trace->min_ms}, {"depth", request.trace->depth}};
  }
  return call<InstrumentReply>(m_channel, Op::instrument, std::move(arguments), [](const json& reply) {
    InstrumentReply out{
        reply.at("session").get<int>(), reply.at("pid").get<int>(), reply.at("functions").get<int>(), {}};
    if (reply.contains("skipped")) {
      for (const auto& skipped : reply["skipped"]) {
        out.skipped.push_back(
            {skipped.value("module", ""), skipped.value("qualname", ""), skipped.value("message", "")});
      }
    }
    return out;
  });
}

Result<InstrumentReadReply> Agent::instrument_read(int session, bool with_data) {
  return call<InstrumentReadReply>(m_channel, Op::instrument_read, {{"session", session}, {"data", with_data}},
                                   read_reply);
}

Result<InstrumentReadReply> Agent::instrument_remove(int session) {
  return call<InstrumentReadReply>(m_channel, Op::instrument_remove, {{"session", session}}, read_reply);
}

Result<InstrumentEvents> Agent::instrument_events(int session, std::int64_t cursor) {
  return call<InstrumentEvents>(m_channel, Op::instrument_events, {{"session", session}, {"cursor", cursor}},
                                [](const json& reply) {
                                  InstrumentEvents out;
                                  for (const auto& event : reply.at("events")) {
                                    out.events.push_back(instrument_event(event));
                                  }
                                  out.cursor = reply.at("cursor").get<std::int64_t>();
                                  out.lost = reply.value("lost", std::int64_t{0});
                                  out.matched = reply.value("matched", std::int64_t{0});
                                  out.done = reply.value("done", false);
                                  out.filter_errors = reply.value("filter_errors", std::int64_t{0});
                                  out.filter_error = text_or_empty(reply, "filter_error");
                                  out.errors = reply.value("errors", std::int64_t{0});
                                  out.error = text_or_empty(reply, "error");
                                  out.replaced = reply.value("replaced", std::vector<std::string>{});
                                  return out;
                                });
}

Result<std::vector<ActiveInstrumentation>> Agent::instrument_list() {
  return call<std::vector<ActiveInstrumentation>>(
      m_channel, Op::instrument_list, json::object(),
      [](const json& reply) { return active_instrumentations(reply.at("instrumentations")); });
}

Result<Done> Agent::stop() {
  return call<Done>(m_channel, Op::stop, json::object(), [](const json&) { return k_done; });
}

Result<StackReply> Agent::stack(const StackRequest& request) {
  return call<StackReply>(m_channel, Op::stack, {{"async", request.tasks}, {"locals", request.locals}}, stack_reply);
}

Result<InspectReply> Agent::inspect(const InspectRequest& request) {
  json arguments = {{"path", request.path}, {"depth", request.depth}};
  if (request.expr) {
    arguments["expr"] = *request.expr;
  }
  return call<InspectReply>(m_channel, Op::inspect, std::move(arguments), [](const json& reply) {
    return InspectReply{reply.at("path").get<std::string>(), value_view(reply.at("value"))};
  });
}

Result<InstancesReply> Agent::instances(const InstancesRequest& request) {
  json arguments = {{"class", request.class_path}, {"limit", request.limit}, {"time_limit", request.time_limit}};
  if (request.expr) {
    arguments["expr"] = *request.expr;
  }
  return call<InstancesReply>(m_channel, Op::instances, std::move(arguments), instances_reply);
}

}  // namespace pyhot::loader

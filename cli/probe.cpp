#include "cli/probe.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/instrument_session.hpp"
#include "cli/output.hpp"
#include "loader/agent_api.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/instrumentation.hpp"
#include "util/file.hpp"

namespace pyhot::cli {

namespace {

using nlohmann::json;

struct FileLine {
  std::string file;
  std::uint32_t line = 0;
};

// "app/views.py:41"; none when the word is not FILE:LINE.
std::optional<FileLine> file_line(const std::string& word) {
  auto colon = word.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == word.size() ||
      word.find_first_not_of("0123456789", colon + 1) != std::string::npos || word.size() - colon > 8) {
    return std::nullopt;
  }
  return FileLine{word.substr(0, colon), static_cast<std::uint32_t>(std::stoul(word.substr(colon + 1)))};
}

// The module's live text, parsed, and its file.
Result<parser::SourceFile> live_source(loader::Agent& agent, const std::string& module, const std::string& file) {
  return live_module_text(agent)(loader::LoadedModule{module, file});
}

Result<PreparedInstrumentation> line_probe(loader::Agent& agent, const FileLine& where) {
  auto file = util::absolute_path(where.file);
  auto module = agent.module_for_file(file);
  if (!module) {
    return module.error();
  }
  auto source = live_source(agent, module->module, file);
  if (!source) {
    return source.error();
  }
  const auto* function = patch::function_at_line(*source, where.line);
  if (function == nullptr) {
    return make_error(ErrorKind::refused, "line " + std::to_string(where.line) + " of " + where.file +
                                              " is not in a function (probes go into functions' bodies)");
  }
  PreparedInstrumentation out;
  out.request.kind = "probe";
  out.request.marker = new_probe_marker();
  auto unit = patch::statement_probe_unit(*source, *function);
  unit.line_probes.push_back({where.line, function->def_line, 1});
  out.request.modules.push_back({module->module, source->path, patch::future_features(*source), {std::move(unit)}});
  out.names[1] = module->module + "." + function->qualname;
  return out;
}

Result<PreparedInstrumentation> variable_probe(loader::Agent& agent, const std::vector<std::string>& target,
                                               const std::string& name) {
  auto chosen = function_probes(agent, target, patch::ProbeShape::whole_run);
  if (!chosen) {
    return chosen.error();
  }
  // function_probes put a `with` above the body; a variable's probes go
  // into the syntax tree instead: the same functions, their plain text.
  PreparedInstrumentation out;
  out.request.kind = "probe";
  out.request.marker = chosen->request.marker;
  int next = 1;
  for (const auto& module : chosen->request.modules) {
    auto source = live_source(agent, module.module, module.file);
    if (!source) {
      return source.error();
    }
    loader::InstrumentedModule probed{module.module, module.file, module.future_flags, {}};
    for (const auto& def : source->definitions) {
      for (const auto& [probe, qualname] : chosen->names) {
        if (qualname == module.module + "." + def.qualname && def.kind != parser::DefinitionKind::klass) {
          auto unit = patch::statement_probe_unit(*source, def);
          unit.variable_probes.push_back({name, def.def_line, next});
          out.names[next++] = qualname;
          probed.units.push_back(std::move(unit));
        }
      }
    }
    out.request.modules.push_back(std::move(probed));
  }
  return out;
}

void print_hit(std::ostream& out, const loader::InstrumentEvent& event, const std::string& function) {
  out << clock_time(event.time) << "  " << event.thread_name << "  " << function << ":" << event.line;
  if (event.value) {
    out << "  = " << *event.value << "\n";
    return;
  }
  out << "\n";
  for (const auto& [name, value] : event.locals) {
    out << "  " << name << " = " << value << "\n";
  }
  for (const auto& [text, value] : event.prints) {
    out << "  " << text << " = " << value << "\n";
  }
  for (const auto& line : event.output) {
    out << "  | " << line << "\n";
  }
  if (!event.code_error.empty()) {
    out << "  --code raised " << event.code_error << "\n";
  }
}

json hit_json(const loader::InstrumentEvent& event, const std::string& function) {
  auto values = [](const loader::NamedValues& pairs) {
    json object = json::object();
    for (const auto& [name, value] : pairs) {
      object[name] = value;
    }
    return object;
  };
  json out = {{"event", "line"},           {"time", event.time},   {"thread", event.thread_name},
              {"thread_id", event.thread}, {"function", function}, {"line", event.line}};
  if (event.value) {
    out["value"] = *event.value;
  } else {
    out["locals"] = values(event.locals);
    out["prints"] = values(event.prints);
    out["output"] = event.output;
    if (!event.code_error.empty()) {
      out["error"] = event.code_error;
    }
  }
  return out;
}

}  // namespace

int run_probe(const ProbeCommandOptions& options) {
  auto where = options.target.size() == 1 ? file_line(options.target[0]) : std::nullopt;
  if (options.var.empty() && !where) {
    print_error("probe takes PID FILE:LINE, or PID MODULE [CLASS] FUNCTION --var NAME", options.json);
    return k_exit_usage;
  }
  if (!options.var.empty() &&
      (where || options.target.size() > 3 || options.locals || !options.prints.empty() || !options.code.empty())) {
    print_error("--var takes MODULE [CLASS] FUNCTION, without --print, --locals or --code", options.json);
    return k_exit_usage;
  }
  if (where && !options.locals && options.prints.empty() && options.code.empty()) {
    print_error("say what to do at the line: --locals, --print EXPR or --code STATEMENTS", options.json);
    return k_exit_usage;
  }
  EventStream stream =
      event_stream(options, "probe", "Probing", options.var.empty() ? "hit" : "assignment",
                   where ? options.target[0] : target_pattern(options.target) + " --var " + options.var);
  stream.prepare = [&options, where](loader::Agent& agent, std::int64_t limit) -> Result<PreparedInstrumentation> {
    auto out = where ? line_probe(agent, *where) : variable_probe(agent, options.target, options.var);
    if (!out) {
      return out.error();
    }
    out->request.lease_seconds = options.lease_seconds;
    out->request.probe = loader::ProbeOptions{options.prints, options.locals, options.code,  options.filter,
                                              limit,          options.depth,  options.length};
    return out;
  };
  stream.print = print_hit;
  stream.to_json = hit_json;
  return connect_and_stream(options.force, stream);
}

}  // namespace pyhot::cli

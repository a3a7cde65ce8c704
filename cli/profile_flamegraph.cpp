// The flame graph `pyhot profile --flamegraph` writes: one SVG file with its
// own script (hover for name and time, click to zoom, search), so it opens in
// any browser with nothing else installed.
#include <cstdio>
#include <functional>
#include <sstream>

#include "cli/profile_report.hpp"

namespace pyhot::cli {

using loader::ProfileNode;

namespace {

constexpr double k_width = 1200;
constexpr double k_row = 17;
constexpr double k_margin = 10;
constexpr double k_top = 40;

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Warm colours by name, so one function has one colour in every frame.
std::string colour_of(const std::string& name) {
  unsigned hash = 2166136261u;
  for (unsigned char c : name) {
    hash = (hash ^ c) * 16777619u;
  }
  char text[32];
  std::snprintf(text, sizeof text, "rgb(%u,%u,%u)", 205 + hash % 50, 80 + (hash >> 8) % 130, 40 + (hash >> 16) % 50);
  return text;
}

struct Frame {
  std::string name;
  double start = 0;  // in the root's units (milliseconds)
  double size = 0;
  int depth = 0;
};

// The label as the script draws it, so the graph reads without scripts too
// (image viewers): as many characters as fit, ~7 px each.
std::string fitted_label(const std::string& name, double width) {
  auto fits = static_cast<long>((width - 6) / 7);
  if (fits < 3) {
    return {};
  }
  auto count = static_cast<std::size_t>(fits);
  return name.size() > count ? name.substr(0, count - 2) + ".." : name;
}

const char* k_script = R"JS(
var W=1200,M=10,frames=[].slice.call(document.querySelectorAll('g.f')),info=document.getElementById('info');
function place(x0,w0){frames.forEach(function(g){var x=+g.dataset.x,w=+g.dataset.w,r=g.querySelector('rect'),t=g.querySelector('text');
 var nx=(x-x0)/w0*(W-2*M)+M,nw=w/w0*(W-2*M);var on=x+w>x0+1e-9&&x<x0+w0-1e-9&&nw>=0.1;g.style.display=on?'':'none';
 r.setAttribute('x',nx);r.setAttribute('width',Math.max(0,nw-0.5));t.setAttribute('x',nx+3);
 var n=g.dataset.n,c=Math.floor((nw-6)/7);t.textContent=c<3?'':(n.length>c?n.slice(0,c-2)+'..':n);});}
frames.forEach(function(g){g.onclick=function(){place(+g.dataset.x,+g.dataset.w);};
 g.onmouseover=function(){info.textContent=g.querySelector('title').textContent;};});
document.getElementById('reset').onclick=function(){place(0,+frames[0].dataset.w);};
document.getElementById('search').onclick=function(){var q=prompt('Search (regular expression)');if(q===null)return;
 var re=new RegExp(q),hit=0,total=+frames[0].dataset.w;frames.forEach(function(g){var m=q&&re.test(g.dataset.n);
 g.querySelector('rect').style.fill=m?'rgb(230,0,230)':'';if(m)hit+= +g.dataset.s;});
 info.textContent=q?('matched '+(100*hit/total).toFixed(1)+'% (self time)'):'';};
place(0,+frames[0].dataset.w);
)JS";

}  // namespace

std::string flamegraph_svg(const std::vector<ProcessProfile>& profiles, const std::string& title) {
  std::vector<Frame> frames;
  std::vector<double> selfs;
  double root = 0;
  int deepest = 0;
  frames.push_back({"all", 0, 0, 0});
  selfs.push_back(0);
  for (const auto& profile : profiles) {
    for (const auto& thread : profile.data.threads) {
      double thread_total = 0;
      for (const auto& node : thread.calls) {
        thread_total += node.total;
      }
      std::size_t thread_index = frames.size();
      frames.push_back(
          {"process " + std::to_string(profile.pid) + ", thread " + thread.name, root * 1000, thread_total * 1000, 1});
      selfs.push_back(0);
      std::function<void(const std::vector<ProfileNode>&, double, int)> place =
          [&](const std::vector<ProfileNode>& nodes, double start, int depth) {
            for (const auto& node : nodes) {
              auto found = profile.functions.find(node.probe);
              frames.push_back({found == profile.functions.end() ? "?" : found->second.name, start * 1000,
                                node.total * 1000, depth});
              selfs.push_back(node.self * 1000);
              deepest = std::max(deepest, depth);
              place(node.children, start, depth + 1);
              start += node.total;
            }
          };
      place(thread.calls, root, 2);
      frames[thread_index].size = thread_total * 1000;
      root += thread_total;
    }
  }
  frames[0].size = root * 1000;
  double height = k_top + (deepest + 1) * k_row + 2 * k_margin;
  std::ostringstream out;
  out << "<?xml version=\"1.0\" standalone=\"no\"?>\n"
      << "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << k_width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << k_width << " " << height << "\" font-family=\"Verdana,sans-serif\" font-size=\"12\">\n"
      << "<style>g.f:hover rect{stroke:#000;stroke-width:0.5} g.f{cursor:pointer} text{pointer-events:none}</style>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"#f8f8f0\"/>\n"
      << "<text x=\"" << k_width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">" << escape(title)
      << "</text>\n"
      << "<text id=\"reset\" x=\"" << k_margin << "\" y=\"20\" style=\"cursor:pointer\">Reset zoom</text>\n"
      << "<text id=\"search\" x=\"" << k_width - 60 << "\" y=\"20\" style=\"cursor:pointer\">Search</text>\n"
      << "<text id=\"info\" x=\"" << k_margin << "\" y=\"" << height - 4 << "\"> </text>\n";
  double scale = root > 0 ? (k_width - 2 * k_margin) / (root * 1000) : 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto& frame = frames[i];
    double percent = root > 0 ? 100 * frame.size / (root * 1000) : 0;
    double y = height - k_margin - k_row * (frame.depth + 1) - 12;
    char label[64];
    std::snprintf(label, sizeof label, " (%s ms, %.2f%%, self %s ms)", format_ms(frame.size).c_str(), percent,
                  format_ms(selfs[i]).c_str());
    out << "<g class=\"f\" data-n=\"" << escape(frame.name) << "\" data-x=\"" << frame.start << "\" data-w=\""
        << frame.size << "\" data-s=\"" << selfs[i] << "\" data-d=\"" << frame.depth << "\"><title>"
        << escape(frame.name) << label << "</title><rect x=\"" << k_margin + frame.start * scale << "\" y=\"" << y
        << "\" width=\"" << frame.size * scale << "\" height=\"" << k_row - 1 << "\" fill=\""
        << (i == 0 ? "rgb(220,220,220)" : colour_of(frame.name)) << "\" rx=\"2\"/><text x=\""
        << k_margin + frame.start * scale + 3 << "\" y=\"" << y + k_row - 5 << "\">"
        << escape(fitted_label(frame.name, frame.size * scale)) << "</text></g>\n";
  }
  out << "<script type=\"text/ecmascript\"><![CDATA[" << k_script << "]]></script>\n</svg>\n";
  return out.str();
}

}  // namespace pyhot::cli

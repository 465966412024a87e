#include "load/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <map>

namespace liftoff::load {
namespace {
namespace json = boost::json;

constexpr std::array<std::pair<const char*, double>, 5> kPercentiles{
    {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"p100", 1.0}}};

double ms(std::uint64_t micros) {
  return static_cast<double>(micros) / 1000.0;
}

std::string mode(const RunOptions& o) {
  return o.rate > 0
             ? fmt::format("open loop, {:.0f} req/s offered", o.rate)
             : fmt::format("closed loop{}",
                           o.think.count() ? fmt::format(", think {} ms", o.think.count()) : "");
}

// CPU milliseconds each measured process tree spent per answer.
std::map<std::string, double> cpu_ms_per_answer(const RunReport& r) {
  std::map<std::string, double> out;
  for (const auto& [name, seconds] : r.cpu_seconds)
    out[name] = r.completed ? seconds * 1000.0 / static_cast<double>(r.completed) : 0;
  return out;
}

}  // namespace

std::string table(const RunReport& r) {
  std::string out =
      fmt::format("{} — {} connections ({} open at the start), {}, {:.1f} s\n", r.scenario,
                  r.options.connections, r.connected, mode(r.options), r.seconds);
  out += fmt::format("  {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}\n", "req/s", "p50 ms",
                     "p90 ms", "p99 ms", "p99.9 ms", "max ms", "answers", "errors");
  out += fmt::format("  {:>10.0f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9} {:>8}\n",
                     r.throughput(), ms(r.latency.quantile(0.5)), ms(r.latency.quantile(0.9)),
                     ms(r.latency.quantile(0.99)), ms(r.latency.quantile(0.999)),
                     ms(r.latency.max()), r.completed, r.error_count());
  for (const auto& [kind, n] : r.errors) {
    out += fmt::format("  error {}: {}\n", kind, n);
    if (auto example = r.error_examples.find(kind); example != r.error_examples.end())
      out += fmt::format("    first: {}\n", example->second);
  }
  if (!r.cpu_seconds.empty()) {
    out += "  CPU per answer:";
    for (const auto& [name, ms_each] : cpu_ms_per_answer(r))
      out += fmt::format(" {} {:.3f} ms", name, ms_each);
    out += "\n";
  }
  return out;
}

std::string to_json(const RunReport& r) {
  json::object latency;
  for (const auto& [name, q] : kPercentiles)
    latency[name == std::string("p100") ? "max" : name] = ms(r.latency.quantile(q));
  latency["mean"] = r.latency.mean() / 1000.0;
  json::object errors, examples, ok_by_kind;
  for (const auto& [kind, n] : r.errors) errors[kind] = n;
  for (const auto& [kind, n] : r.ok_by_kind) ok_by_kind[kind] = n;
  for (const auto& [kind, example] : r.error_examples) examples[kind] = example;
  json::object cpu_ms;
  for (const auto& [name, ms_each] : cpu_ms_per_answer(r)) cpu_ms[name] = ms_each;
  json::array timeline;
  for (std::size_t i = 0; i < r.timeline.size(); ++i) {
    const auto& s = r.timeline[i];
    timeline.push_back(json::object{{"second", i},
                                    {"answers", s.completed},
                                    {"errors", s.errors},
                                    {"p50_ms", ms(s.latency.quantile(0.5))},
                                    {"p99_ms", ms(s.latency.quantile(0.99))}});
  }
  json::object out{{"scenario", r.scenario},
                   {"connections", r.options.connections},
                   {"connected_at_start", r.connected},
                   {"mode", r.options.rate > 0 ? "open" : "closed"},
                   {"offered_rate", r.options.rate},
                   {"seconds", r.seconds},
                   // When the measurement began (the timeline's second 0), in Unix seconds.
                   {"started_unix", std::chrono::duration<double>(
                                        (std::chrono::system_clock::now() -
                                         (std::chrono::steady_clock::now() - r.window_start))
                                            .time_since_epoch())
                                        .count()},
                   {"throughput", r.throughput()},
                   {"answers", r.completed},
                   {"ok", r.ok},
                   {"ok_by_kind", std::move(ok_by_kind)},
                   {"error_fraction", r.error_fraction()},
                   {"errors", std::move(errors)},
                   {"error_examples", std::move(examples)},
                   {"latency_ms", std::move(latency)},
                   {"cpu_ms_per_answer", std::move(cpu_ms)},
                   {"timeline", std::move(timeline)}};
  return json::serialize(out);
}

std::string to_svg(const RunReport& r) {
  // Two panels, 480x300 each: latency by percentile (log-scaled "nines" on x), and p50/p99 per
  // second of the run.
  constexpr double kW = 480, kH = 300, kPad = 40;
  auto y_max = std::max(1.0, ms(r.latency.max()) * 1.1);
  auto y = [&](double v) { return kH - kPad - (kH - 2 * kPad) * std::min(v, y_max) / y_max; };
  std::string out = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" )"
      R"(font-size="11"><rect width="100%" height="100%" fill="white"/>)",
      2 * kW, kH);
  out += fmt::format(R"(<text x="10" y="16" font-size="13">{}: {}, {} connections</text>)",
                     r.scenario, mode(r.options), r.options.connections);
  // Panel 1: percentile curve; x = number of nines, 0 (p0) .. 4 (p99.99).
  std::string curve;
  for (int i = 0; i <= 100; ++i) {
    double nines = 4.0 * i / 100;
    double q = 1 - std::pow(10.0, -nines);
    double x = kPad + (kW - 2 * kPad) * nines / 4;
    curve += fmt::format("{:.1f},{:.1f} ", x, y(ms(r.latency.quantile(q))));
  }
  out += fmt::format(R"(<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>)",
                     curve);
  for (auto [label, nines] :
       {std::pair{"p0", 0.0}, {"p90", 1.0}, {"p99", 2.0}, {"p99.9", 3.0}, {"p99.99", 4.0}}) {
    out += fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">{}</text>)",
                       kPad + (kW - 2 * kPad) * nines / 4, kH - kPad + 14, label);
  }
  out += fmt::format(R"(<text x="4" y="{:.0f}">{:.1f} ms</text><text x="4" y="{:.0f}">0</text>)",
                     y(y_max) + 4, y_max, y(0));
  out += fmt::format(
      R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">latency by percentile</text>)", kW / 2,
      kPad - 8);
  // Panel 2: p50 and p99 per second.
  auto n = std::max<std::size_t>(r.timeline.size(), 2);
  std::string p50, p99;
  for (std::size_t i = 0; i < r.timeline.size(); ++i) {
    double x = kW + kPad + (kW - 2 * kPad) * static_cast<double>(i) / static_cast<double>(n - 1);
    p50 += fmt::format("{:.1f},{:.1f} ", x, y(ms(r.timeline[i].latency.quantile(0.5))));
    p99 += fmt::format("{:.1f},{:.1f} ", x, y(ms(r.timeline[i].latency.quantile(0.99))));
  }
  out +=
      fmt::format(R"(<polyline fill="none" stroke="#2ca02c" stroke-width="2" points="{}"/>)", p50);
  out +=
      fmt::format(R"(<polyline fill="none" stroke="#d62728" stroke-width="2" points="{}"/>)", p99);
  out += fmt::format(
      R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">p50 (green) and p99 (red) per second</text>)",
      kW + kW / 2, kPad - 8);
  out += fmt::format(R"(<text x="{:.0f}" y="{:.0f}" text-anchor="middle">seconds 0..{}</text>)",
                     kW + kW / 2, kH - kPad + 14, r.timeline.size());
  return out + "</svg>\n";
}

}  // namespace liftoff::load

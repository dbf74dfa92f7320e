// Bench reporting: percentiles, the progress bar, machine facts, SVG charts.
#include "cli/bench/bench.h"
#include "core/mapped_file.h"
#include "kernels/dot.h"
#include "kernels/matmul.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <span>
#include <thread>

namespace tandem::bench {

Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.avg = sum / static_cast<double>(v.size());
  // Nearest rank: p99 of 20 values is the largest.
  auto rank = [&](double p) {
    const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(i, 1, v.size()) - 1];
  };
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.min = v.front();
  s.max = v.back();
  return s;
}

json stats_json(const Stats& s) {
  return {{"avg", s.avg}, {"p50", s.p50}, {"p99", s.p99}, {"min", s.min}, {"max", s.max}};
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), tty_(isatty(STDERR_FILENO) != 0) {
  draw();
}

Progress::~Progress() {
  if (tty_) std::fprintf(stderr, "\r\033[K");
}

void Progress::tick(int64_t n) {
  done_ = std::min(done_ + n, total_);
  draw();
}

void Progress::draw() {
  if (!tty_) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done_ / total_);
  std::fprintf(stderr, "\r\033[K[%s%s] %lld/%lld %s", std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), label_.c_str());
  std::fflush(stderr);
}

json machine_json() {
  std::string cpu = "unknown";
  if (auto info = read_file("/proc/cpuinfo")) {
    const size_t at = info->find("model name");
    if (at != std::string::npos) {
      const size_t colon = info->find(':', at), eol = info->find('\n', at);
      if (colon != std::string::npos && colon < eol) cpu = info->substr(colon + 2, eol - colon - 2);
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return {{"cpu", cpu},
          {"cores", std::thread::hardware_concurrency()},
          {"ram_gb", static_cast<double>(pages) * static_cast<double>(page) / 1e9},
          {"simd", kernels::simd_target_name()},
          {"matmul_simd", kernels::matmul_target_name()}};
}

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// "Nice" tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int want) {
  const double span = std::max(hi - lo, 1e-9);
  const double raw = span / want, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-6; t += step) out.push_back(t);
  return out;
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

void draw_chart(std::string& svg, const Chart& c, double ox, double oy, double w, double h) {
  const double left = ox + 64, right = ox + w - 16, top = oy + 36, bottom = oy + h - 48;
  double xmin = 1e300, xmax = -1e300, ymin = 0, ymax = -1e300;
  for (const auto& s : c.series) {
    for (const auto& [x, y] : s.points) {
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
      if (c.log_y) ymin = ymin == 0 ? y : std::min(ymin, y);
    }
  }
  if (xmin > xmax) return;
  if (xmax == xmin) xmax = xmin + 1;
  auto ty = [&](double y) {
    if (c.log_y) {
      const double a = std::log10(std::max(ymin, 1e-9)), b = std::log10(std::max(ymax, ymin * 10));
      return bottom - (std::log10(std::max(y, 1e-9)) - a) / (b - a) * (bottom - top);
    }
    return bottom - y / (ymax * 1.08) * (bottom - top);
  };
  auto tx = [&](double x) { return left + (x - xmin) / (xmax - xmin) * (right - left); };
  svg += fmt::format(R"svg(<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>)svg", left, oy + 22,
                     escape(c.title));
  svg += fmt::format(
      R"svg(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#333"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#333"/>)svg",
      left, bottom, right, top);
  std::vector<double> yt;
  if (c.log_y) {
    for (double p = std::pow(10, std::floor(std::log10(std::max(ymin, 1e-9)))); p <= ymax * 10; p *= 10)
      yt.push_back(p);
  } else {
    yt = ticks(0, ymax * 1.08, 5);
  }
  for (double y : yt) {
    if (ty(y) < top - 1 || ty(y) > bottom + 1) continue;
    svg += fmt::format(
        R"svg(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>)svg",
        left, ty(y), right, ty(y), left - 6, ty(y) + 4, fmt::format("{:g}", y));
  }
  std::vector<double> xs;
  for (const auto& s : c.series) {
    for (const auto& p : s.points) xs.push_back(p.first);
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (double x : xs) {
    svg += fmt::format(R"svg(<text x="{}" y="{}" font-size="11" text-anchor="middle">{:g}</text>)svg", tx(x),
                       bottom + 16, x);
  }
  svg += fmt::format(R"svg(<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>)svg", (left + right) / 2,
                     bottom + 36, escape(c.x_label));
  svg += fmt::format(
      R"svg(<text transform="translate({},{}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>)svg", ox + 16,
      (top + bottom) / 2, escape(c.y_label));
  for (size_t i = 0; i < c.series.size(); ++i) {
    const auto& s = c.series[i];
    const char* color = kColors[i % std::size(kColors)];
    std::string pts;
    for (const auto& [x, y] : s.points) pts += fmt::format("{:.1f},{:.1f} ", tx(x), ty(y));
    svg += fmt::format(R"svg(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)svg", color, pts);
    for (const auto& [x, y] : s.points) {
      svg += fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)svg", tx(x), ty(y), color);
    }
    svg += fmt::format(
        R"svg(<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>)svg",
        left + 8, top + 4 + 16 * static_cast<double>(i), color, left + 22, top + 13 + 16 * static_cast<double>(i),
        escape(s.name));
  }
}

}  // namespace

Status write_svg(const std::string& path, const std::vector<Chart>& charts) {
  if (charts.empty()) return Status::error("--plot: this run has nothing to plot");
  const double w = 460, h = 320;
  std::string svg = fmt::format(
      R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>)svg",
      w * static_cast<double>(charts.size()), h);
  for (size_t i = 0; i < charts.size(); ++i) draw_chart(svg, charts[i], w * static_cast<double>(i), 0, w, h);
  svg += "</svg>\n";
  return write_text_atomic(path, svg);
}

}  // namespace tandem::bench

#include "sketch.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace fp {

Sketcher::Sketcher(int bands, int strong, int loBin, int hiBin, int firstBin, int lastBin, int lag, int smooth, double scale)
    : bands_(bands), strong_(strong), lag_(lag), smooth_(smooth) {
  if (lag < 1 || lag > 16 || smooth < 1 || smooth > 16) throw std::invalid_argument("sketchLag and sketchSmooth must be in 1..16");
  if (bands < 1 || bands > 16) throw std::invalid_argument("sketchBands must be in 1..16");
  if (strong < 1 || strong > bands) throw std::invalid_argument("sketchStrong must be in 1..sketchBands");
  const double lo = loBin * scale, hi = hiBin * scale;
  if (lo < firstBin - 0.5 || hi > lastBin + 0.5 || lo >= hi) throw std::invalid_argument("sketch bands must lie inside the analysed spectrum");
  const int n = bands + 1;
  std::vector<double> edges;
  for (int i = 0; i <= n; i++) edges.push_back(lo * std::pow(hi / lo, static_cast<double>(i) / n));
  for (int b = 0; b < n; b++) {
    if (edges[b + 1] - edges[b] < 1.0) throw std::invalid_argument("sketch bands narrower than a bin");
    // Bin k covers [k - 0.5, k + 0.5): its share is the part of that inside the band.
    std::vector<Weight> ws;
    for (int k = static_cast<int>(std::floor(edges[b] + 0.5)); k <= static_cast<int>(std::ceil(edges[b + 1] - 0.5)); k++) {
      const double w = std::min(edges[b + 1], k + 0.5) - std::max(edges[b], k - 0.5);
      if (w > 0) ws.push_back({k - firstBin, static_cast<float>(w)});
    }
    weights_.push_back(ws);
  }
  energy_.assign(n, 0.0);
  // Before the first frame the signal is silent: every difference is zero.
  raw_.assign(static_cast<size_t>(bands) * smooth, 0.0);
  history_.assign(static_cast<size_t>(bands) * lag, 0.0);
  change_.assign(bands, 0.0);
  sorted_.assign(bands, 0.0);
}

uint32_t Sketcher::next(const float* power) {
  for (int b = 0; b <= bands_; b++) {
    double e = 0;
    for (const Weight& x : weights_[b]) e += x.w * power[x.bin];
    energy_[b] = std::log2(e + 1e-6);  // the floor keeps silence finite
  }
  uint32_t bits = 0;
  // A plain mean over the last `smooth` frames, not a decaying one: audio that starts later, or
  // at another frame phase, gives the same words once those frames have passed.
  double* raw = &raw_[static_cast<size_t>(frame_ % smooth_) * bands_];
  double* past = &history_[static_cast<size_t>(frame_ % lag_) * bands_];
  frame_++;
  for (int b = 0; b < bands_; b++) raw[b] = energy_[b] - energy_[b + 1];
  for (int b = 0; b < bands_; b++) {
    double d = 0;
    for (int k = 0; k < smooth_; k++) d += raw_[static_cast<size_t>((frame_ + k) % smooth_) * bands_ + b];  // oldest first
    d /= smooth_;
    if (d > past[b]) bits |= 1u << b;
    change_[b] = std::fabs(d - past[b]);
    past[b] = d;
  }
  // The bits whose difference changed most: noise flips the small changes first.
  sorted_ = change_;
  std::nth_element(sorted_.begin(), sorted_.begin() + (bands_ - strong_), sorted_.end());
  const double least = sorted_[bands_ - strong_];
  if (least > 0)
    for (int b = 0; b < bands_; b++)
      if (change_[b] >= least) bits |= 1u << (16 + b);
  return bits;
}

}  // namespace fp

#include "sketch.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace fp {

Sketcher::Sketcher(int bands, int strong, int loBin, int hiBin, int firstBin, int lastBin)
    : bands_(bands), strong_(strong) {
  if (bands < 1 || bands > 16) throw std::invalid_argument("sketchBands must be in 1..16");
  if (strong < 1 || strong > bands) throw std::invalid_argument("sketchStrong must be in 1..sketchBands");
  if (loBin < firstBin || hiBin > lastBin + 1 || loBin >= hiBin)
    throw std::invalid_argument("sketch bins must lie inside the analysed spectrum");
  const int n = bands + 1;
  for (int i = 0; i <= n; i++) {
    const double edge = loBin * std::pow(static_cast<double>(hiBin) / loBin, static_cast<double>(i) / n);
    edges_.push_back(static_cast<int>(std::lround(edge)) - firstBin);
    if (i > 0 && edges_[i] <= edges_[i - 1]) throw std::invalid_argument("sketch bands narrower than a bin");
  }
  energy_.assign(n, 0.0);
  // Before the first frame the signal is silent: every difference is zero.
  prevDiff_.assign(bands, 0.0);
  change_.assign(bands, 0.0);
  sorted_.assign(bands, 0.0);
}

uint32_t Sketcher::next(const float* power) {
  for (int b = 0; b <= bands_; b++) {
    double e = 0;
    for (int k = edges_[b]; k < edges_[b + 1]; k++) e += power[k];
    energy_[b] = e;
  }
  uint32_t bits = 0;
  for (int b = 0; b < bands_; b++) {
    const double d = energy_[b] - energy_[b + 1];
    if (d > prevDiff_[b]) bits |= 1u << b;
    change_[b] = std::fabs(d - prevDiff_[b]);
    prevDiff_[b] = d;
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

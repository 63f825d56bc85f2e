#include "extractor.h"

#include "simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace fp {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// log2 of four powers at once, from the float's exponent and a cubic fit of the mantissa: about
// 1e-3 absolute error, far below the strength thresholds, and several times cheaper than
// std::log2. Powers near zero give -100.
inline v4 fastLog2(v4 x) {
  const v4u bits = reinterpret_cast<v4u>(x);
  const v4 e = __builtin_convertvector(reinterpret_cast<v4i>((bits >> 23) & 0xff) - 127, v4);
  const v4 m = reinterpret_cast<v4>((bits & 0x007fffff) | 0x3f800000);  // m in [1, 2)
  const v4 l = e + ((0.15824871f * m - 1.05187502f) * m + 3.04788335f) * m - 2.15428158f;
  return x > 1e-30f ? l : v4{-100.0f, -100.0f, -100.0f, -100.0f};
}

}  // namespace

Extractor::Extractor(const Config& cfg)
    : cfg_(cfg),
      fft_(cfg.fftSize) {
  if (cfg.sketchShifts < 0 || cfg.sketchShifts > 4) throw std::invalid_argument("sketchShifts must be in 0..4");
  for (int k = -cfg.sketchShifts; k <= cfg.sketchShifts; k++)
    sketchers_.emplace_back(cfg.sketchBands, cfg.sketchStrong, cfg.sketchLoBin, cfg.sketchHiBin, cfg.binLo - cfg.freqRadius,
                            cfg.binHi + cfg.freqRadius, cfg.sketchLag, cfg.sketchSmooth, std::exp2(k * cfg.sketchShiftCents / 1200.0));
  if (cfg.hop <= 0 || cfg.hop > cfg.fftSize) throw std::invalid_argument("hop must be in 1..fftSize");
  if (cfg.binLo - cfg.freqRadius < 0 || cfg.binHi + cfg.freqRadius > cfg.fftSize / 2)
    throw std::invalid_argument("peak band and its neighbourhood must lie inside the spectrum");
  if (cfg.dtMax < 2 || cfg.dtMax > 64) throw std::invalid_argument("dtMax out of range");
  if (cfg.fanout > kMaxFanout) throw std::invalid_argument("fanout above 8");
  if (!(cfg.anchorCents > 0) || 1200.0 * std::log2(static_cast<double>(cfg.binHi) / cfg.binLo) / cfg.anchorCents >= (1 << kAnchorBits))
    throw std::invalid_argument("anchorCents too small for the peak band");
  if (!(cfg.intervalCents > 0) || !(cfg.zoneCents > 0) || 2 * cfg.zoneCents / cfg.intervalCents >= (1 << kIntervalBits))
    throw std::invalid_argument("zoneCents / intervalCents out of range");
  if (cfg.ratioSteps < 1 || cfg.ratioSteps > (1 << kRatioBits)) throw std::invalid_argument("ratioSteps out of range");
  if (cfg.probeCents < 0) throw std::invalid_argument("probeCents must not be negative");
  if (cfg.timeRadius < 1 || cfg.freqRadius < 1 || cfg.meanRadius < 1 || cfg.rankRadius < 0 ||
      cfg.rankKeep < 1 || cfg.fanout < 1)
    throw std::invalid_argument("radii, rankKeep and fanout must be positive");

  window_.resize(cfg.fftSize);
  for (int i = 0; i < cfg.fftSize; i++)  // periodic Hann
    window_[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * i / cfg.fftSize));
  prefix_.resize(cfg.fftSize / 2 + 2);
  width_ = cfg.binHi - cfg.binLo + 1 + 2 * cfg.freqRadius;
  power_.resize((width_ + 3) & ~3);  // whole vectors of four
  lp_.assign(static_cast<size_t>(width_ + 2), kNegInf);
  m3_.assign(static_cast<size_t>(width_ + 2 * (cfg.freqRadius - 1)), kNegInf);
  ringLen_ = 2 * cfg.timeRadius + 1;
  rows_.assign(static_cast<size_t>(ringLen_ * width_), kNegInf);
  maxRows_.assign(static_cast<size_t>(ringLen_ * width_), kNegInf);
  // The first frame is centred so that it ends one hop into the signal: a signal delayed by
  // whole hops then yields exactly the same frames, shifted.
  pending_.assign(static_cast<size_t>(cfg.fftSize - cfg.hop), 0.0f);
}

void Extractor::push(const float* samples, size_t n, Output& out) {
  if (ended_) throw std::logic_error("push after flush");
  const size_t N = static_cast<size_t>(cfg_.fftSize), H = static_cast<size_t>(cfg_.hop);
  // Frames that begin in the samples held back from earlier blocks are read from pending_, which
  // needs at most N more samples for them; frames that begin in this block are read in place, so
  // a long block is not copied.
  const size_t held = pending_.size() - pendingStart_;
  pending_.insert(pending_.end(), samples, samples + std::min(n, N));
  size_t at = 0;  // next frame start, counted from the first held-back sample
  for (; at < held && at + N <= held + n; at += H) processFrame(&pending_[pendingStart_ + at]);
  for (; at + N <= held + n; at += H) processFrame(samples + (at - held));
  if (at < held) {
    pendingStart_ += at;  // the block was shorter than a frame: pending_ holds all of it
  } else {
    pending_.assign(samples + (at - held), samples + n);
    pendingStart_ = 0;
  }
  if (pendingStart_ > 0 && pendingStart_ * 2 >= pending_.size()) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(pendingStart_));
    pendingStart_ = 0;
  }
  emitHashes(peaksDone_, false, out);
}

void Extractor::flush(Output& out) {
  if (ended_) return;
  // Silence long enough to frame every remaining sample and to let every pending candidate and
  // rank decision see its full neighbourhood (silence contributes no candidates).
  const int tail = cfg_.fftSize + (cfg_.timeRadius + cfg_.rankRadius + 1) * cfg_.hop;
  std::vector<float> zeros(static_cast<size_t>(tail), 0.0f);
  push(zeros.data(), zeros.size(), out);
  ended_ = true;
  selectPeaks(candidatesDone_);
  emitHashes(peaksDone_, true, out);
}

void Extractor::processFrame(const float* frame) {
  const int base = cfg_.binLo - cfg_.freqRadius;
  fft_.power(frame, window_.data(), power_.data(), base, base + width_ - 1);
  for (Sketcher& s : sketchers_) sketchOut_.push_back(s.next(power_.data()));

  const int32_t t = frames_++;
  float* L = row(t);
  float* M = maxRow(t);
  // The log row goes to the ring and, between -inf guards, to lp_; m3 (its maximum over +-1 bins)
  // has freqRadius - 1 guards each side. The guards stand for bins outside the row, so the
  // loops below need no clamping and vectorise.
  const int R = cfg_.freqRadius, n = width_;
  float* lp = lp_.data() + 1;
  for (int i = 0; i < n; i += 4) store4(&power_[i], fastLog2(load4(&power_[i])));
  std::memcpy(L, power_.data(), n * sizeof(float));
  std::memcpy(lp, power_.data(), n * sizeof(float));
  float* m3 = m3_.data() + (R - 1);
  for (int i = 0; i < n; i++) m3[i] = std::max(lp[i - 1], std::max(lp[i], lp[i + 1]));
  // Separable maximum over +-freqRadius: the maximum over +-1 bins, then over offsets at most 3
  // apart up to freqRadius - 1, which together cover the neighbourhood exactly.
  for (int i = 0; i < n; i++) M[i] = m3[i];
  for (int j = 3;; j += 3) {
    const int off = std::min(j, R - 1);
    if (off <= 0) break;
    for (int i = 0; i < n; i++) M[i] = std::max(M[i], std::max(m3[i - off], m3[i + off]));
    if (off == R - 1) break;
  }
  const int32_t c = t - cfg_.timeRadius;
  if (c >= 0) detectCandidates(c);
  selectPeaks(candidatesDone_);
}

void Extractor::detectCandidates(int32_t c) {
  const int R = cfg_.freqRadius, T = cfg_.timeRadius;
  const float* L = row(c);
  const float* M = maxRow(c);
  // Prefix sums of the centre row (clamped log values) for the local mean.
  const int n = width_;
  prefix_[0] = 0.0f;
  for (int i = 0; i < n; i++) prefix_[i + 1] = prefix_[i] + std::max(L[i], cfg_.floorLog2 - 20.0f);
  const int first = R, last = n - 1 - R;  // columns of binLo..binHi
  for (int i = first; i <= last; i++) {
    const float v = L[i];
    if (v < M[i] || v < cfg_.floorLog2) continue;
    // Ties inside the frequency neighbourhood: the lowest bin wins.
    bool ok = true;
    for (int j = i - R; j < i && ok; j++) ok = L[j] < v;
    if (!ok) continue;
    // Time neighbourhood: strictly above earlier frames, at least equal to later ones.
    for (int k = 1; k <= T && ok; k++) ok = maxRow(c + k)[i] <= v;
    for (int k = 1; k <= T && ok && c - k >= 0; k++) ok = maxRow(c - k)[i] < v;
    if (!ok) continue;
    const int lo = std::max(0, i - cfg_.meanRadius), hi = std::min(n - 1, i + cfg_.meanRadius);
    const float mean = (prefix_[hi + 1] - prefix_[lo]) / static_cast<float>(hi - lo + 1);
    const float s = v - mean;
    if (s < cfg_.minStrength) continue;
    // The bin interpolated on a parabola through the log powers: pitch intervals finer than bins.
    const float l = L[i - 1], r = L[i + 1], den = l - 2 * v + r;
    const float frac = den < 0 ? 0.5f * (l - r) / den : 0.0f;
    const int bin = cfg_.binLo + i - R;
    const float cents = 1200.0f * std::log2((static_cast<float>(bin) + frac) / static_cast<float>(cfg_.binLo));
    candidates_.push_back({c, static_cast<int16_t>(bin), s, std::max(0.0f, cents)});
  }
  candidatesDone_ = c + 1;
}

void Extractor::selectPeaks(int32_t candidatesDone) {
  // A candidate at frame c is decided once candidates are known up to c + rankRadius (or the
  // stream has ended). Stronger candidates within +-rankRadius frames outrank it; equal
  // strengths are ordered by (time, bin) so that exactly one order exists.
  const int32_t W = cfg_.rankRadius;
  const int32_t decidable = ended_ ? candidatesDone : candidatesDone - W;
  if (decidable <= peaksDone_) return;
  // candidates_ holds every candidate with t >= peaksDone_ - W (older ones are trimmed below).
  size_t begin = 0;
  for (size_t idx = 0; idx < candidates_.size(); idx++) {
    const Candidate& cand = candidates_[idx];
    if (cand.t < peaksDone_) continue;
    if (cand.t >= decidable) break;
    while (candidates_[begin].t < cand.t - W) begin++;
    int stronger = 0;
    for (size_t j = begin; j < candidates_.size() && candidates_[j].t <= cand.t + W; j++) {
      const Candidate& o = candidates_[j];
      if (j == idx) continue;
      if (o.strength > cand.strength || (o.strength == cand.strength && j < idx)) {
        if (++stronger >= cfg_.rankKeep) break;
      }
    }
    if (stronger < cfg_.rankKeep) {
      Peak p{};
      p.t = cand.t;
      p.f = cand.f;
      p.cents = cand.cents;
      peaks_.push_back(p);
    }
  }
  peaksDone_ = decidable;
  while (!candidates_.empty() && candidates_.front().t < peaksDone_ - W) candidates_.pop_front();
}

void Extractor::emitHashes(int32_t finalBefore, bool ended, Output& out) {
  // Every peak in peaks_ is final. A hash (anchor, two targets) is decided as soon as its later
  // target is: the anchor's earliest `fanout` targets depend only on the peaks before them. So
  // each anchor hashes the targets known so far and waits only for the ones still to come; an
  // anchor with few targets no longer holds back the anchors after it. (The set of hashes does
  // not depend on how the input is split; their order may.)
  out.sketch.insert(out.sketch.end(), sketchOut_.begin(), sketchOut_.end());
  sketchOut_.clear();
  const uint64_t base = peaksPopped_;
  for (size_t i = 0; i < peaks_.size(); i++) {
    Peak& a = peaks_[i];
    if (a.done) continue;
    const int32_t zoneEnd = a.t + cfg_.dtMax;
    size_t j = a.next > base + i ? static_cast<size_t>(a.next - base) : i + 1;
    for (; j < peaks_.size(); j++) {
      const Peak& c = peaks_[j];
      if (c.t > zoneEnd) {
        a.done = true;
        break;
      }
      if (c.t - a.t < 1 || std::fabs(c.cents - a.cents) > cfg_.zoneCents) continue;
      for (int k = 0; k < a.found; k++) emitTriplet(a, a.targetT[k], a.targetCents[k], c.t, c.cents, out);
      a.targetT[a.found] = c.t;
      a.targetCents[a.found] = c.cents;
      if (++a.found == cfg_.fanout) {
        a.done = true;
        break;
      }
    }
    a.next = base + j;
    // No peak past the zone yet, but the zone lies wholly in the final part: nothing more comes.
    if (!a.done && (ended || zoneEnd < finalBefore)) a.done = true;
  }
  while (!peaks_.empty() && peaks_.front().done) {
    peaks_.pop_front();
    peaksPopped_++;
  }
}

void Extractor::emitTriplet(const Peak& a, int32_t tb, float cb, int32_t tc, float cc, Output& out) const {
  // Intervals in cents and the ratio of time differences do not change when the audio is played
  // faster, slower or transposed; only the anchor's own pitch moves, which a query probes.
  const int32_t span = tc - a.t;
  if (span < 2) return;
  const int ratio = std::min(cfg_.ratioSteps - 1, static_cast<int>(static_cast<float>(tb - a.t) / static_cast<float>(span) * cfg_.ratioSteps));
  const auto interval = [&](float c) { return static_cast<uint32_t>(std::floor((c - a.cents + cfg_.zoneCents) / cfg_.intervalCents)); };
  const uint32_t rest = (interval(cb) << (kIntervalBits + kRatioBits)) | (interval(cc) << kRatioBits) | static_cast<uint32_t>(ratio);
  const int maxStep = (1 << kAnchorBits) - 1;
  const int lo = std::max(0, static_cast<int>(std::floor((a.cents - cfg_.probeCents) / cfg_.anchorCents)));
  const int hi = std::min(maxStep, static_cast<int>(std::floor((a.cents + cfg_.probeCents) / cfg_.anchorCents)));
  for (int step = lo; step <= hi; step++) {
    out.hashes.push_back((static_cast<uint32_t>(step) << (2 * kIntervalBits + kRatioBits)) | rest);
    out.times.push_back(static_cast<uint32_t>(a.t));
    out.cents.push_back(static_cast<uint32_t>(std::lround(a.cents)));
  }
}

}  // namespace fp

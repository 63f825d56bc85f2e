// Streaming landmark extractor: 16 kHz mono float PCM in, (hash, frame) pairs out.
//
// Stages, each fed by the one before as soon as its lookahead is satisfied:
//   framing + STFT -> log spectrum rows -> 2-D local maxima ("candidates")
//   -> density control by rank in a sliding time window ("peaks") -> peak triplets ("hashes");
//   and from each spectrum row, a sketch word (sketch.h) that verifies candidate matches.
// Every decision depends only on a fixed number of frames around it, so the output does not
// depend on how the input is split into blocks, and a whole-hop delay only shifts the times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "fft.h"
#include "sketch.h"

namespace fp {

struct Config {
  int fftSize = 2048;     // 128 ms at 16 kHz, 7.8 Hz per bin
  int hop = 512;          // 32 ms per frame
  int binLo = 20;         // lowest bin a peak may sit in (156 Hz)
  int binHi = 520;        // highest bin a peak may sit in (4.1 kHz)
  int freqRadius = 12;    // a peak is the maximum of +-freqRadius bins ...
  int timeRadius = 2;     // ... and +-timeRadius frames
  int meanRadius = 32;    // strength = level above the mean of +-meanRadius bins in its frame
  float minStrength = 1.0f;  // log2 power units above that mean
  float floorLog2 = -10.0f;  // absolute floor (log2 power, full-scale sine ~ +18): no peaks in near-silence
  int rankRadius = 4;     // density: a peak survives if fewer than rankKeep stronger ones ...
  int rankKeep = 10;      // ... lie within +-rankRadius frames
  int dtMax = 24;         // target zone: 1..dtMax frames ahead ...
  float zoneCents = 1200; // ... and within +-zoneCents of the anchor's pitch
  int fanout = 5;         // targets per anchor: the earliest in its zone; a hash per two of them
  float anchorCents = 100;   // hash: the anchor's pitch in steps of this many cents ...
  float intervalCents = 50;  // ... each target's interval from it in steps of this many ...
  int ratioSteps = 8;        // ... and where the first target falls between anchor and second
  float probeCents = 0;      // a query also hashes every anchor step within +-probeCents
  int sketchBands = 16;   // sketch: bits per frame (at most 16) ...
  int sketchStrong = 10;  // ... of which this many are marked strong ...
  int sketchLoBin = 26;   // ... from bands between this bin (203 Hz) ...
  int sketchHiBin = 500;  // ... and this one (3.9 kHz) ...
  int sketchShifts = 0;   // ... and as many more with the bands moved up and as many moved down ...
  float sketchShiftCents = 50;  // ... by this many cents each step
  int sketchLag = 4;      // a bit compares band differences this many frames apart ...
  int sketchSmooth = 3;   // ... each a mean over this many frames
};

struct Output {
  std::vector<uint32_t> hashes;
  std::vector<uint32_t> times;   // frame index of the anchor peak
  std::vector<uint32_t> cents;   // per hash, its anchor's pitch above binLo in cents
  // Per frame analysed, in frame order, a word per band shift: the lowest shift first.
  std::vector<uint32_t> sketch;
};

class Extractor {
 public:
  explicit Extractor(const Config& cfg);
  void push(const float* samples, size_t n, Output& out);
  // Ends the stream: pads with silence so every sample is framed and every pending decision is
  // taken, then emits the remaining hashes. The extractor may not be pushed to afterwards.
  void flush(Output& out);
  const Config& config() const { return cfg_; }

  static constexpr int kMaxFanout = 8;
  static constexpr int kAnchorBits = 6;
  static constexpr int kIntervalBits = 6;
  static constexpr int kRatioBits = 3;

 private:
  // `cents`: the peak's pitch above binLo, its bin interpolated between bins.
  struct Candidate { int32_t t; int16_t f; float strength; float cents; };
  // A peak, and as an anchor: how far its targets have been scanned and the ones it found.
  struct Peak {
    int32_t t; int16_t f; float cents; int16_t found; uint32_t next; bool done;
    int32_t targetT[kMaxFanout]; float targetCents[kMaxFanout];
  };
  void emitTriplet(const Peak& a, int32_t tb, float cb, int32_t tc, float cc, Output& out) const;

  void processFrame(const float* frame);
  void detectCandidates(int32_t c);
  void selectPeaks(int32_t upTo);
  void emitHashes(int32_t finalBefore, bool ended, Output& out);
  float* row(int32_t t) { return &rows_[static_cast<size_t>((t % ringLen_) * width_)]; }
  float* maxRow(int32_t t) { return &maxRows_[static_cast<size_t>((t % ringLen_) * width_)]; }

  Config cfg_;
  RealFft fft_;
  std::vector<Sketcher> sketchers_;  // per band shift
  std::vector<uint32_t> sketchOut_;  // words of frames analysed since the last emit
  std::vector<float> window_, power_, prefix_;
  std::vector<float> lp_, m3_;  // a log row and its +-1 bin maximum, padded with -inf guards
  std::vector<float> pending_;  // samples not yet framed
  size_t pendingStart_ = 0;
  int width_;                   // bins stored per row: binLo - freqRadius .. binHi + freqRadius
  int ringLen_;
  std::vector<float> rows_, maxRows_;  // log2 power and its +-freqRadius maximum, per frame
  int32_t frames_ = 0;                 // frames computed so far
  int32_t candidatesDone_ = 0;         // candidates known for all frames below this
  int32_t peaksDone_ = 0;              // peak selection final for all frames below this
  std::deque<Candidate> candidates_;
  std::deque<Peak> peaks_;
  uint64_t peaksPopped_ = 0;           // peaks retired from the front of peaks_ so far
  bool ended_ = false;
};

}  // namespace fp

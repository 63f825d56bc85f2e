// Sketch stage: per frame, one word of sign bits of band-energy differences, after Haitsma and
// Kalker's robust hash (2002), made to survive rooms: bit b is set when the log energy of band b
// minus that of band b + 1, smoothed over a few frames, grew since `lag` frames before. The
// landmark hashes say *that* a track and offset are plausible; comparing these words at that
// offset says whether the query is the same recording (a few bits in ten differ) or another
// recording of related music (close to half differ). Log energies, because a room or a phone
// scales each band by a fixed gain, which their differences over time then cancel; a lag of a
// few frames, because a room's tail smears the change from one frame to the next (measured on
// the accuracy bench's rooms, at RT60 1 s only 6% of clips verified with the one-frame change)
// but not the change over 128 ms. The high half-word marks the `strong` bits whose difference
// changed most, the ones noise is least likely to have flipped: a query is compared on those.
#pragma once

#include <cstdint>
#include <vector>

namespace fp {

class Sketcher {
 public:
  // Words of `bands` sign bits (at most 16) from bands + 1 bands, log-spaced from loBin to hiBin
  // times `scale` of a power row whose first element is bin firstBin and whose last is lastBin.
  // Band edges fall between bins, which count in proportion: a query transposed by a few cents
  // is sketched with its bands moved by as much, and meets the catalog's words.
  // Differences are compared `lag` frames apart after a mean over `smooth` frames.
  Sketcher(int bands, int strong, int loBin, int hiBin, int firstBin, int lastBin, int lag, int smooth, double scale = 1.0);
  uint32_t next(const float* power);

 private:
  int bands_, strong_, lag_, smooth_;
  int64_t frame_ = 0;
  struct Weight { int bin; float w; };                // an offset into the power row and its share
  std::vector<std::vector<Weight>> weights_;          // per band
  std::vector<double> energy_, change_, sorted_;
  std::vector<double> raw_;      // the differences of the last smooth_ frames, a row per frame
  std::vector<double> history_;  // the smoothed differences of the last lag_ frames, a row per frame
};

}  // namespace fp

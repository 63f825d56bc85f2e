// Sketch stage: per frame, one word of sign bits of band-energy differences, after Haitsma and
// Kalker's robust hash (2002): bit b is set when the energy of band b minus that of band b + 1
// grew since the previous frame. The landmark hashes say *that* a track and offset are
// plausible; comparing these words at that offset says whether the query is the same recording
// (a few bits in ten differ) or another recording of related music (close to half differ). The
// high half-word marks the `strong` bits whose difference changed most, the ones noise is least
// likely to have flipped: a query is compared on those.
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
  Sketcher(int bands, int strong, int loBin, int hiBin, int firstBin, int lastBin, double scale = 1.0);
  uint32_t next(const float* power);

 private:
  int bands_, strong_;
  struct Weight { int bin; float w; };                // an offset into the power row and its share
  std::vector<std::vector<Weight>> weights_;          // per band
  std::vector<double> energy_, prevDiff_, change_, sorted_;
};

}  // namespace fp

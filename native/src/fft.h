// Power spectrum of a real frame: a radix-2 complex FFT of half the length over split real and
// imaginary arrays, then the even/odd split. Twiddles (laid out per stage so that the inner loop
// reads them contiguously) and the bit-reversal order are computed once per size.
#pragma once

#include <cstdint>
#include <vector>

namespace fp {

class RealFft {
 public:
  explicit RealFft(int n);
  // in: n real samples, weighted by window; out[k - lo] = |X[k]|^2 for k in [lo, hi].
  void power(const float* in, const float* window, float* out, int lo, int hi);
  int size() const { return n_; }

 private:
  int n_, half_;
  std::vector<uint32_t> bitrev_;
  std::vector<float> twRe_, twIm_;        // stage s (len = 2^s) starts at offset len/2 - 1
  std::vector<float> splitRe_, splitIm_;  // e^{-2 pi i k / n}, k <= half
  std::vector<float> re_, im_;
};

}  // namespace fp

#include "fft.h"

#include <cmath>
#include <stdexcept>

namespace fp {

RealFft::RealFft(int n) : n_(n), half_(n / 2) {
  if (n < 8 || (n & (n - 1)) != 0) throw std::invalid_argument("fft size must be a power of two >= 8");
  int bits = 0;
  while ((1 << bits) < half_) bits++;
  bitrev_.resize(half_);
  for (int i = 0; i < half_; i++) {
    uint32_t r = 0;
    for (int b = 0; b < bits; b++) r |= ((i >> b) & 1u) << (bits - 1 - b);
    bitrev_[i] = r;
  }
  twRe_.resize(half_);
  twIm_.resize(half_);
  for (int len = 2; len <= half_; len <<= 1) {
    const int m = len / 2;
    for (int k = 0; k < m; k++) {
      const double a = -2.0 * M_PI * k / len;
      twRe_[m - 1 + k] = static_cast<float>(std::cos(a));
      twIm_[m - 1 + k] = static_cast<float>(std::sin(a));
    }
  }
  splitRe_.resize(half_ + 1);
  splitIm_.resize(half_ + 1);
  for (int k = 0; k <= half_; k++) {
    const double a = -2.0 * M_PI * k / n_;
    splitRe_[k] = static_cast<float>(std::cos(a));
    splitIm_[k] = static_cast<float>(std::sin(a));
  }
  re_.resize(half_);
  im_.resize(half_);
}

void RealFft::power(const float* in, float* out, int lo, int hi) {
  float* __restrict re = re_.data();
  float* __restrict im = im_.data();
  // Even samples as real parts, odd samples as imaginary parts, in bit-reversed order; the first
  // stage (len 2, twiddle 1) is folded into the load.
  for (int i = 0; i < half_; i += 2) {
    const uint32_t j0 = bitrev_[i], j1 = bitrev_[i + 1];
    const float ar = in[2 * j0], ai = in[2 * j0 + 1], br = in[2 * j1], bi = in[2 * j1 + 1];
    re[i] = ar + br; im[i] = ai + bi;
    re[i + 1] = ar - br; im[i + 1] = ai - bi;
  }
  for (int len = 4; len <= half_; len <<= 1) {
    const int m = len >> 1;
    const float* __restrict wr = &twRe_[m - 1];
    const float* __restrict wi = &twIm_[m - 1];
    for (int s = 0; s < half_; s += len) {
      float* __restrict ur = re + s;
      float* __restrict ui = im + s;
      float* __restrict vr = re + s + m;
      float* __restrict vi = im + s + m;
      for (int k = 0; k < m; k++) {
        const float tr = vr[k] * wr[k] - vi[k] * wi[k];
        const float ti = vr[k] * wi[k] + vi[k] * wr[k];
        vr[k] = ur[k] - tr; vi[k] = ui[k] - ti;
        ur[k] += tr; ui[k] += ti;
      }
    }
  }
  // X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[h-k]) / 2, O = -i (Z[k] - conj Z[h-k]) / 2
  for (int k = lo; k <= hi; k++) {
    const int a = k & (half_ - 1), b = (half_ - k) & (half_ - 1);
    const float er = 0.5f * (re[a] + re[b]), ei = 0.5f * (im[a] - im[b]);
    const float dr = 0.5f * (re[a] - re[b]), di = 0.5f * (im[a] + im[b]);
    const float pr = dr * splitRe_[k] - di * splitIm_[k];
    const float pi = dr * splitIm_[k] + di * splitRe_[k];
    const float xr = er + pi, xi = ei - pr;
    out[k - lo] = xr * xr + xi * xi;
  }
}

}  // namespace fp

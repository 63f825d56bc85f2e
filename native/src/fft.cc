#include "fft.h"

#include <cmath>
#include <stdexcept>

#include "simd.h"

namespace fp {

RealFft::RealFft(int n) : n_(n), half_(n / 2) {
  if (n < 16 || (n & (n - 1)) != 0) throw std::invalid_argument("fft size must be a power of two >= 16");
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

void RealFft::power(const float* in, const float* window, float* out, int lo, int hi) {
  float* __restrict re = re_.data();
  float* __restrict im = im_.data();
  // Windowed even samples as real parts, odd samples as imaginary parts, in bit-reversed order;
  // the first two stages (len 2 with twiddle 1, len 4) are done in registers on the way.
  const float w4r0 = twRe_[1], w4i0 = twIm_[1], w4r1 = twRe_[2], w4i1 = twIm_[2];
  for (int i = 0; i < half_; i += 4) {
    float r[4], q[4];
    for (int p = 0; p < 4; p += 2) {
      const uint32_t j0 = bitrev_[i + p], j1 = bitrev_[i + p + 1];
      const float ar = in[2 * j0] * window[2 * j0], ai = in[2 * j0 + 1] * window[2 * j0 + 1];
      const float br = in[2 * j1] * window[2 * j1], bi = in[2 * j1 + 1] * window[2 * j1 + 1];
      r[p] = ar + br; q[p] = ai + bi;
      r[p + 1] = ar - br; q[p + 1] = ai - bi;
    }
    const float t0r = r[2] * w4r0 - q[2] * w4i0, t0i = r[2] * w4i0 + q[2] * w4r0;
    const float t1r = r[3] * w4r1 - q[3] * w4i1, t1i = r[3] * w4i1 + q[3] * w4r1;
    re[i] = r[0] + t0r; im[i] = q[0] + t0i;
    re[i + 1] = r[1] + t1r; im[i + 1] = q[1] + t1i;
    re[i + 2] = r[0] - t0r; im[i + 2] = q[0] - t0i;
    re[i + 3] = r[1] - t1r; im[i + 3] = q[1] - t1i;
  }
  for (int len = 8; len <= half_; len <<= 1) {
    const int m = len >> 1;
    const float* wr = &twRe_[m - 1];
    const float* wi = &twIm_[m - 1];
    for (int s = 0; s < half_; s += len) {
      float* ur = re + s;
      float* ui = im + s;
      float* vr = re + s + m;
      float* vi = im + s + m;
      for (int k = 0; k < m; k += 4) {
        const v4 xr = load4(vr + k), xi = load4(vi + k), cr = load4(wr + k), ci = load4(wi + k);
        const v4 tr = xr * cr - xi * ci;
        const v4 ti = xr * ci + xi * cr;
        const v4 yr = load4(ur + k), yi = load4(ui + k);
        store4(vr + k, yr - tr); store4(vi + k, yi - ti);
        store4(ur + k, yr + tr); store4(ui + k, yi + ti);
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

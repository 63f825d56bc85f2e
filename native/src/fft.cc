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
  // The remaining stages in pairs: each pass does the butterflies of stages len and 2 len on four
  // quarters of a block in registers (the same operations as one stage at a time, half the loads
  // and stores); a last odd stage goes alone.
  const auto butterfly = [](v4& ur, v4& ui, v4& vr, v4& vi, v4 cr, v4 ci) {
    const v4 tr = vr * cr - vi * ci;
    const v4 ti = vr * ci + vi * cr;
    vr = ur - tr; vi = ui - ti;
    ur = ur + tr; ui = ui + ti;
  };
  int len = 8;
  for (; 2 * len <= half_; len <<= 2) {
    const int m = len >> 1;
    const float* w1r = &twRe_[m - 1];
    const float* w1i = &twIm_[m - 1];
    const float* w2r = &twRe_[len - 1];
    const float* w2i = &twIm_[len - 1];
    for (int s = 0; s < half_; s += 2 * len) {
      float* r0 = re + s; float* r1 = r0 + m; float* r2 = r1 + m; float* r3 = r2 + m;
      float* i0 = im + s; float* i1 = i0 + m; float* i2 = i1 + m; float* i3 = i2 + m;
      for (int k = 0; k < m; k += 4) {
        v4 ar = load4(r0 + k), ai = load4(i0 + k), br = load4(r1 + k), bi = load4(i1 + k);
        v4 cr = load4(r2 + k), ci = load4(i2 + k), dr = load4(r3 + k), di = load4(i3 + k);
        const v4 w1r4 = load4(w1r + k), w1i4 = load4(w1i + k);
        butterfly(ar, ai, br, bi, w1r4, w1i4);
        butterfly(cr, ci, dr, di, w1r4, w1i4);
        butterfly(ar, ai, cr, ci, load4(w2r + k), load4(w2i + k));
        butterfly(br, bi, dr, di, load4(w2r + m + k), load4(w2i + m + k));
        store4(r0 + k, ar); store4(i0 + k, ai); store4(r1 + k, br); store4(i1 + k, bi);
        store4(r2 + k, cr); store4(i2 + k, ci); store4(r3 + k, dr); store4(i3 + k, di);
      }
    }
  }
  if (len <= half_) {
    const int m = len >> 1;
    const float* wr = &twRe_[m - 1];
    const float* wi = &twIm_[m - 1];
    for (int s = 0; s < half_; s += len) {
      float* ur = re + s; float* vr = ur + m;
      float* ui = im + s; float* vi = ui + m;
      for (int k = 0; k < m; k += 4) {
        v4 ar = load4(ur + k), ai = load4(ui + k), br = load4(vr + k), bi = load4(vi + k);
        butterfly(ar, ai, br, bi, load4(wr + k), load4(wi + k));
        store4(ur + k, ar); store4(ui + k, ai); store4(vr + k, br); store4(vi + k, bi);
      }
    }
  }
  // X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[h-k]) / 2, O = -i (Z[k] - conj Z[h-k]) / 2;
  // for one bin (float) or four (v4), with Z[h] = Z[0].
  const auto split = [](auto ra, auto ia, auto rb, auto ib, auto cr, auto ci) {
    const auto er = 0.5f * (ra + rb), ei = 0.5f * (ia - ib);
    const auto dr = 0.5f * (ra - rb), di = 0.5f * (ia + ib);
    const auto pr = dr * cr - di * ci;
    const auto pi = dr * ci + di * cr;
    const auto xr = er + pi, xi = ei - pr;
    return xr * xr + xi * xi;
  };
  const float* cr = splitRe_.data();
  const float* ci = splitIm_.data();
  int k = lo;
  // Four bins at a time where both k and h - k stay inside 1..h-1: Z[h-k] is read backwards.
  for (; k < 1; k++) out[k - lo] = split(re[0], im[0], re[0], im[0], cr[k], ci[k]);
  for (; k + 3 <= hi && k + 3 < half_; k += 4) {
    const v4 rb = load4(re + half_ - k - 3), ib = load4(im + half_ - k - 3);
    store4(out + (k - lo), split(load4(re + k), load4(im + k), __builtin_shufflevector(rb, rb, 3, 2, 1, 0),
                                 __builtin_shufflevector(ib, ib, 3, 2, 1, 0), load4(cr + k), load4(ci + k)));
  }
  for (; k <= hi; k++) {
    const int a = k & (half_ - 1), b = (half_ - k) & (half_ - 1);
    out[k - lo] = split(re[a], im[a], re[b], im[b], cr[k], ci[k]);
  }
}

}  // namespace fp

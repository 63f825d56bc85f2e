// Four floats as one value (GCC/Clang vector extensions: SSE on x86-64, NEON on arm64, plain code
// elsewhere). Lane-wise arithmetic rounds exactly as the scalar expressions would (the build
// forbids contracting a * b + c into a fused multiply-add), so results do not depend on the
// vector width or the machine.
#pragma once

#include <cstdint>
#include <cstring>

namespace fp {

typedef float v4 __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));

inline v4 load4(const float* p) {
  v4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store4(float* p, v4 v) { std::memcpy(p, &v, sizeof v); }

}  // namespace fp

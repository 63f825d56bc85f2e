// Node binding: a JS class around fp::Extractor, and a memory trim. Float32Array in, Uint32Arrays out; no I/O.
#include <napi.h>

#include <cstring>
#include <memory>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string>

#include "extractor.h"

namespace {

int intField(const Napi::Object& o, const char* name, int fallback) {
  Napi::Value v = o.Get(name);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

float floatField(const Napi::Object& o, const char* name, float fallback) {
  Napi::Value v = o.Get(name);
  return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}

fp::Config readConfig(const Napi::Object& o) {
  fp::Config c;
  c.fftSize = intField(o, "fftSize", c.fftSize);
  c.hop = intField(o, "hop", c.hop);
  c.binLo = intField(o, "binLo", c.binLo);
  c.binHi = intField(o, "binHi", c.binHi);
  c.freqRadius = intField(o, "freqRadius", c.freqRadius);
  c.timeRadius = intField(o, "timeRadius", c.timeRadius);
  c.meanRadius = intField(o, "meanRadius", c.meanRadius);
  c.minStrength = floatField(o, "minStrength", c.minStrength);
  c.floorLog2 = floatField(o, "floorLog2", c.floorLog2);
  c.rankRadius = intField(o, "rankRadius", c.rankRadius);
  c.rankKeep = intField(o, "rankKeep", c.rankKeep);
  c.dtMax = intField(o, "dtMax", c.dtMax);
  c.zoneCents = floatField(o, "zoneCents", c.zoneCents);
  c.anchorCents = floatField(o, "anchorCents", c.anchorCents);
  c.intervalCents = floatField(o, "intervalCents", c.intervalCents);
  c.ratioSteps = intField(o, "ratioSteps", c.ratioSteps);
  c.probeCents = floatField(o, "probeCents", c.probeCents);
  c.fanout = intField(o, "fanout", c.fanout);
  c.sketchBands = intField(o, "sketchBands", c.sketchBands);
  c.sketchStrong = intField(o, "sketchStrong", c.sketchStrong);
  c.sketchLoBin = intField(o, "sketchLoBin", c.sketchLoBin);
  c.sketchHiBin = intField(o, "sketchHiBin", c.sketchHiBin);
  c.sketchShifts = intField(o, "sketchShifts", c.sketchShifts);
  c.sketchShiftCents = floatField(o, "sketchShiftCents", c.sketchShiftCents);
  c.sketchLag = intField(o, "sketchLag", c.sketchLag);
  c.sketchSmooth = intField(o, "sketchSmooth", c.sketchSmooth);
  return c;
}

Napi::Object toJs(Napi::Env env, const fp::Output& out) {
  const size_t n = out.hashes.size();
  Napi::Uint32Array hashes = Napi::Uint32Array::New(env, n);
  Napi::Uint32Array times = Napi::Uint32Array::New(env, n);
  Napi::Uint32Array cents = Napi::Uint32Array::New(env, n);
  if (n) {
    std::memcpy(hashes.Data(), out.hashes.data(), n * 4);
    std::memcpy(times.Data(), out.times.data(), n * 4);
    std::memcpy(cents.Data(), out.cents.data(), n * 4);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("hashes", hashes);
  r.Set("times", times);
  r.Set("cents", cents);
  Napi::Uint32Array sketch = Napi::Uint32Array::New(env, out.sketch.size());
  if (!out.sketch.empty()) std::memcpy(sketch.Data(), out.sketch.data(), out.sketch.size() * 4);
  r.Set("sketch", sketch);
  return r;
}

class ExtractorWrap : public Napi::ObjectWrap<ExtractorWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Extractor",
                       {InstanceMethod("push", &ExtractorWrap::Push),
                        InstanceMethod("flush", &ExtractorWrap::Flush)});
  }

  explicit ExtractorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ExtractorWrap>(info) {
    Napi::Env env = info.Env();
    fp::Config cfg;
    if (info.Length() > 0 && info[0].IsObject()) cfg = readConfig(info[0].As<Napi::Object>());
    try {
      impl_ = std::make_unique<fp::Extractor>(cfg);
    } catch (const std::exception& e) {
      Napi::RangeError::New(env, std::string("fingerprint config: ") + e.what()).ThrowAsJavaScriptException();
    }
  }

 private:
  Napi::Value Push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      Napi::TypeError::New(env, "push expects a Float32Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Float32Array pcm = info[0].As<Napi::Float32Array>();
    fp::Output out;
    try {
      impl_->push(pcm.Data(), pcm.ElementLength(), out);
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return toJs(env, out);
  }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    fp::Output out;
    impl_->flush(out);
    return toJs(info.Env(), out);
  }

  std::unique_ptr<fp::Extractor> impl_;
};

// glibc keeps the memory that threads free in its arenas: after a load of live sessions the
// process stayed hundreds of MB above its idle size for good. This hands the free pages back.
Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Extractor", ExtractorWrap::Init(env));
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory));
  return exports;
}

}  // namespace

NODE_API_MODULE(audio_ident_fp, Init)

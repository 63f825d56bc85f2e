// Test-only: a plain forward pass of a Keras model straight from its layer list and weights, in
// Keras's own channels-last layout with naive loops. It shares nothing with the ONNX converter
// (no layout tracking, no ONNX), so the two agreeing checks the conversion.
import type { KerasLayer, KerasModel, Weight } from '../src/vibe/keras-h5.js';

interface T {
  shape: number[];
  data: Float32Array;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const strides = (shape: number[]) => shape.map((_, i) => size(shape.slice(i + 1)));
const axisOf = (a: number, rank: number) => (a < 0 ? a + rank : a);

/** Runs one example (no batch axis in `input`'s data; shape without the batch). Returns every layer's output. */
export function forward(model: KerasModel, input: Float32Array): Map<string, T> {
  const out = new Map<string, T>();
  for (const layer of model.layers) {
    if (layer.className === 'InputLayer') {
      const shape = (layer.config.batch_input_shape as number[]).slice(1);
      out.set(layer.name, { shape, data: input });
      continue;
    }
    const ins = layer.inbound.map((n) => out.get(n)!);
    out.set(layer.name, run(layer, ins, model.weights.get(layer.name) ?? new Map()));
  }
  return out;
}

// Shapes here exclude the batch axis, so Keras axis k is index k-1.
function run(layer: KerasLayer, ins: T[], w: Map<string, Weight>): T {
  const c = layer.config;
  const x = ins[0]!;
  switch (layer.className) {
    case 'BatchNormalization': {
      const axis = (Array.isArray(c.axis) ? (c.axis as number[])[0]! : (c.axis as number)) - 1;
      const eps = c.epsilon as number;
      const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((r) => w.get(r)!.data);
      const st = strides(x.shape)[axis]!;
      const n = x.shape[axis]!;
      const y = new Float32Array(x.data.length);
      for (let i = 0; i < y.length; i++) {
        const ch = Math.floor(i / st) % n;
        y[i] = ((x.data[i]! - mean![ch]!) / Math.sqrt(variance![ch]! + eps)) * gamma![ch]! + beta![ch]!;
      }
      return { shape: x.shape, data: y };
    }
    case 'Conv2D': {
      const k = w.get('kernel')!;
      const bias = w.get('bias')!.data;
      const [kh, kw, cin, cout] = k.shape as [number, number, number, number];
      const [h, wd] = x.shape as [number, number, number];
      const same = c.padding === 'same';
      const pt = same ? Math.floor((kh - 1) / 2) : 0;
      const pl = same ? Math.floor((kw - 1) / 2) : 0;
      const oh = same ? h : h - kh + 1;
      const ow = same ? wd : wd - kw + 1;
      const y = new Float32Array(oh * ow * cout);
      const acc = new Float64Array(cout);
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          acc.set(bias);
          for (let a = 0; a < kh; a++) {
            const r = i + a - pt;
            if (r < 0 || r >= h) continue;
            for (let b = 0; b < kw; b++) {
              const s = j + b - pl;
              if (s < 0 || s >= wd) continue;
              for (let ci = 0; ci < cin; ci++) {
                const v = x.data[(r * wd + s) * cin + ci]!;
                if (v === 0) continue;
                const base = ((a * kw + b) * cin + ci) * cout;
                for (let o = 0; o < cout; o++) acc[o]! += v * k.data[base + o]!;
              }
            }
          }
          for (let o = 0; o < cout; o++) y[(i * ow + j) * cout + o] = act(c.activation as string, acc[o]!);
        }
      return { shape: [oh, ow, cout], data: y };
    }
    case 'MaxPooling2D': {
      const [ph, pw] = c.pool_size as [number, number];
      const [h, wd, ch] = x.shape as [number, number, number];
      const oh = Math.floor(h / ph);
      const ow = Math.floor(wd / pw);
      const y = new Float32Array(oh * ow * ch).fill(-Infinity);
      for (let i = 0; i < oh * ph; i++)
        for (let j = 0; j < ow * pw; j++)
          for (let q = 0; q < ch; q++) {
            const o = (Math.floor(i / ph) * ow + Math.floor(j / pw)) * ch + q;
            y[o] = Math.max(y[o]!, x.data[(i * wd + j) * ch + q]!);
          }
      return { shape: [oh, ow, ch], data: y };
    }
    case 'Dense': {
      const k = w.get('kernel')!;
      const bias = w.get('bias')!.data;
      const [nin, nout] = k.shape as [number, number];
      const y = new Float32Array(nout);
      for (let o = 0; o < nout; o++) {
        let s = bias[o]!;
        for (let i = 0; i < nin; i++) s += x.data[i]! * k.data[i * nout + o]!;
        y[o] = act(c.activation as string, s);
      }
      return { shape: [nout], data: y };
    }
    case 'Activation':
      return { shape: x.shape, data: x.data.map((v) => act(c.activation as string, v)) };
    case 'Dropout':
    case 'Flatten':
      return { shape: [x.data.length], data: x.data };
    case 'TensorFlowOpLayer':
      return tf(layer, ins);
    default:
      throw new Error(`reference: ${layer.className}`);
  }
}

function tf(layer: KerasLayer, ins: T[]): T {
  const def = layer.config.node_def as { op: string; input: string[]; attr: Record<string, { list?: { i?: string[] }; b?: boolean }> };
  const consts = (layer.config.constants ?? {}) as Record<string, unknown>;
  const x = ins[0]!;
  const rank = x.shape.length + 1;
  switch (def.op) {
    case 'Pad': {
      const pads = (consts['1'] as [number, number][]).slice(1);
      const shape = x.shape.map((n, i) => n + pads[i]![0] + pads[i]![1]);
      const y = new Float32Array(size(shape));
      const sx = strides(x.shape);
      const sy = strides(shape);
      for (let i = 0; i < x.data.length; i++) {
        let o = 0;
        for (let d = 0; d < shape.length; d++) o += ((Math.floor(i / sx[d]!) % x.shape[d]!) + pads[d]![0]) * sy[d]!;
        y[o] = x.data[i]!;
      }
      return { shape, data: y };
    }
    case 'Squeeze': {
      const dims = def.attr.squeeze_dims!.list!.i!.map((d) => axisOf(Number(d), rank) - 1);
      return { shape: x.shape.filter((_, i) => !dims.includes(i)), data: x.data };
    }
    case 'ExpandDims': {
      const d = axisOf(Number(consts['1']), rank + 1) - 1;
      return { shape: [...x.shape.slice(0, d), 1, ...x.shape.slice(d)], data: x.data };
    }
    case 'Transpose': {
      const perm = (consts['1'] as number[]).slice(1).map((p) => p - 1);
      const shape = perm.map((p) => x.shape[p]!);
      const sx = strides(x.shape);
      const sy = strides(shape);
      const y = new Float32Array(x.data.length);
      for (let o = 0; o < y.length; o++) {
        let i = 0;
        for (let d = 0; d < shape.length; d++) i += (Math.floor(o / sy[d]!) % shape[d]!) * sx[perm[d]!]!;
        y[o] = x.data[i]!;
      }
      return { shape, data: y };
    }
    case 'ConcatV2': {
      const axis = axisOf(Number(consts[String(def.input.length - 1)]), rank) - 1;
      const outer = size(x.shape.slice(0, axis));
      const shape = [...x.shape];
      shape[axis] = ins.reduce((n, t) => n + t.shape[axis]!, 0);
      const y = new Float32Array(size(shape));
      let at = 0;
      for (let o = 0; o < outer; o++)
        for (const t of ins) {
          const block = size(t.shape.slice(axis));
          y.set(t.data.subarray(o * block, (o + 1) * block), at);
          at += block;
        }
      return { shape, data: y };
    }
    case 'Add':
    case 'AddV2':
      return { shape: x.shape, data: x.data.map((v, i) => v + ins[1]!.data[i]!) };
    case 'Mean':
    case 'Max': {
      const raw = consts['1'];
      const axis = axisOf(Array.isArray(raw) ? (raw as number[])[0]! : (raw as number), rank) - 1;
      const n = x.shape[axis]!;
      const inner = size(x.shape.slice(axis + 1));
      const outer = size(x.shape.slice(0, axis));
      const y = new Float32Array(outer * inner);
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          let s = def.op === 'Mean' ? 0 : -Infinity;
          for (let k = 0; k < n; k++) {
            const v = x.data[(o * n + k) * inner + i]!;
            s = def.op === 'Mean' ? s + v : Math.max(s, v);
          }
          y[o * inner + i] = def.op === 'Mean' ? s / n : s;
        }
      const keep = def.attr.keep_dims?.b === true;
      const shape = keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
      return { shape, data: y };
    }
    default:
      throw new Error(`reference: op ${def.op}`);
  }
}

function act(kind: string, v: number): number {
  if (kind === 'relu') return Math.max(v, 0);
  if (kind === 'sigmoid') return 1 / (1 + Math.exp(-v));
  if (kind === 'linear') return v;
  throw new Error(`reference: activation ${kind}`);
}

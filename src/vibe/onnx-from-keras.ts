// An ONNX model from a Keras functional model, layer by layer as model_config describes it.
//
// Keras is channels-last (NHWC); ONNX convolutions and pooling are channels-first (NCHW). Rather
// than transposing around every layer, each tensor carries `order`: ONNX axis i holds Keras axis
// order[i]. Ops that only move axes (Keras Transpose) just re-label them, axis arguments
// (padding, squeeze, concat, reductions) are mapped through `order`, and a real Transpose is
// emitted only where an op needs a particular layout (NCHW for convolutions, Keras order
// before Flatten and at the outputs).
import onnxProto from 'onnx-proto';
import type { KerasLayer, KerasModel, Weight } from './keras-h5.js';

const { onnx } = onnxProto;
const OPSET = 13;

/** A tensor of the graph being built: ONNX axis i holds Keras axis order[i]. */
export interface Value {
  name: string;
  order: number[];
}

export interface ConvertOptions {
  /** A layer whose output becomes the extra output 'embedding': before its activation where it has one. */
  embeddingLayer?: string;
}

/** A Keras model's layers as ONNX nodes, before its outputs are chosen (see encodeModel). */
export interface ConvertedGraph {
  graph: Graph;
  /** Per layer its output and its value before its activation (its output where it has none). */
  layers: Map<string, { out: Value; beforeActivation: Value }>;
  /** The Keras model's output. */
  output: Value;
  inputShape: (number | null)[];
}

/** Model outputs: 'output' (the Keras model's output) and, when asked for, 'embedding'. */
export function kerasToOnnx(model: KerasModel, options: ConvertOptions = {}): Uint8Array {
  const c = convertGraph(model);
  const outputs: { name: string; value: Value }[] = [];
  if (options.embeddingLayer !== undefined) {
    const layer = c.layers.get(options.embeddingLayer);
    if (!layer) throw new Error(`no layer ${options.embeddingLayer} in the model`);
    outputs.push({ name: 'embedding', value: layer.beforeActivation });
  }
  outputs.push({ name: 'output', value: c.output });
  return encodeModel(c, outputs);
}

/** Every layer of a one-input, one-output Keras model, converted in order. */
export function convertGraph(model: KerasModel): ConvertedGraph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('only models with one input and one output are supported');
  const g = new Graph();
  const layers = new Map<string, { out: Value; beforeActivation: Value }>();
  let inputShape: (number | null)[] = [];
  for (const layer of model.layers) {
    const ins = layer.inbound.map((n) => {
      const v = layers.get(n)?.out;
      if (!v) throw new Error(`layer ${layer.name} takes ${n}, which is not defined before it`);
      return v;
    });
    const w = model.weights.get(layer.name) ?? new Map<string, Weight>();
    if (layer.className === 'InputLayer') {
      inputShape = layer.config.batch_input_shape as (number | null)[];
      const input = { name: 'input', order: inputShape.map((_, i) => i) };
      layers.set(layer.name, { out: input, beforeActivation: input });
      continue;
    }
    let pre: Value | undefined;
    const out = convertLayer(g, layer, ins, w, (v) => (pre = v));
    layers.set(layer.name, { out, beforeActivation: pre ?? out });
  }
  return { graph: g, layers, output: layers.get(model.outputs[0]!)!.out, inputShape };
}

/** The ONNX model of a converted graph with these named outputs, each in Keras axis order. */
export function encodeModel(c: ConvertedGraph, outputs: { name: string; value: Value }[]): Uint8Array {
  const g = c.graph;
  for (const o of outputs) {
    const v = g.toOrder(o.value, identity(o.value.order.length));
    g.node('Identity', [v.name], [], o.name);
  }
  const graph = onnx.GraphProto.create({
    name: 'keras',
    node: g.nodeList(),
    initializer: g.initializerList(),
    input: [
      valueInfo(
        'input',
        c.inputShape.map((d) => d ?? 'batch'),
      ),
    ],
    output: outputs.map((o) => valueInfo(o.name, undefined)),
  });
  const proto = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'audio-ident',
    opsetImport: [{ domain: '', version: OPSET }],
    graph,
  });
  return onnx.ModelProto.encode(proto).finish();
}

function convertLayer(g: Graph, layer: KerasLayer, ins: Value[], w: Map<string, Weight>, onPreActivation: (v: Value) => void): Value {
  const c = layer.config;
  const x = ins[0]!;
  const rank = x.order.length;
  switch (layer.className) {
    case 'BatchNormalization': {
      const axisCfg = c.axis;
      const axis = norm(Array.isArray(axisCfg) ? (axisCfg[0] as number) : (axisCfg as number), rank);
      const channels = (w.get('moving_mean') ?? need(w, 'moving_mean', layer)).data.length;
      // ONNX normalises over axis 1: bring the Keras axis there, the others keep their order.
      const v = x.order[1] === axis ? x : g.toOrder(x, [0, axis, ...x.order.filter((k) => k !== 0 && k !== axis).sort((a, b) => a - b)]);
      const gamma = w.get('gamma')?.data ?? new Float32Array(channels).fill(1);
      const beta = w.get('beta')?.data ?? new Float32Array(channels);
      const name = g.node(
        'BatchNormalization',
        [
          v.name,
          g.floats(gamma, [channels]),
          g.floats(beta, [channels]),
          g.floats(need(w, 'moving_mean', layer).data, [channels]),
          g.floats(need(w, 'moving_variance', layer).data, [channels]),
        ],
        [attrFloat('epsilon', c.epsilon as number)],
      );
      return { name, order: v.order };
    }
    case 'Conv2D': {
      if (c.data_format !== 'channels_last' || rank !== 4) throw new Error(`${layer.name}: only channels-last 2-D convolutions are supported`);
      const v = g.toOrder(x, NCHW);
      const kernel = need(w, 'kernel', layer);
      const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
      // Keras keeps kernels as [kh, kw, in, out]; ONNX wants [out, in, kh, kw].
      const k = new Float32Array(kernel.data.length);
      for (let a = 0; a < kh; a++)
        for (let b = 0; b < kw; b++)
          for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) k[((o * cin + i) * kh + a) * kw + b] = kernel.data[((a * kw + b) * cin + i) * cout + o]!;
      const strides = c.strides as number[];
      const dilations = c.dilation_rate as number[];
      const inputs = [v.name, g.floats(k, [cout, cin, kh, kw])];
      if (c.use_bias !== false) inputs.push(g.floats(need(w, 'bias', layer).data, [cout]));
      const pre = g.node('Conv', inputs, [
        attrInts('kernel_shape', [kh, kw]),
        attrInts('strides', strides),
        attrInts('dilations', dilations),
        attrInts('pads', samePads(c.padding as string, [kh, kw], strides, dilations)),
      ]);
      return activation(g, { name: pre, order: NCHW }, c.activation as string, onPreActivation);
    }
    case 'MaxPooling2D': {
      if (c.data_format !== 'channels_last' || rank !== 4) throw new Error(`${layer.name}: only channels-last 2-D pooling is supported`);
      const v = g.toOrder(x, NCHW);
      const size = c.pool_size as number[];
      const strides = (c.strides as number[] | null) ?? size;
      const name = g.node(
        'MaxPool',
        [v.name],
        [attrInts('kernel_shape', size), attrInts('strides', strides), attrInts('pads', samePads(c.padding as string, size, strides, [1, 1]))],
      );
      return { name, order: NCHW };
    }
    case 'Dense': {
      if (rank !== 2) throw new Error(`${layer.name}: Dense on rank-${rank} input is not supported`);
      const v = g.toOrder(x, [0, 1]);
      const kernel = need(w, 'kernel', layer);
      const inputs = [v.name, g.floats(kernel.data, kernel.shape)];
      if (c.use_bias !== false) inputs.push(g.floats(need(w, 'bias', layer).data, [kernel.shape[1]!]));
      const pre = g.node('Gemm', inputs);
      return activation(g, { name: pre, order: [0, 1] }, c.activation as string, onPreActivation);
    }
    case 'Activation':
      return activation(g, x, c.activation as string, () => undefined);
    case 'Dropout':
      return x; // inference: the identity
    case 'Flatten': {
      // Keras flattens in its own (channels-last) order.
      const v = g.toOrder(x, identity(rank));
      return { name: g.node('Flatten', [v.name], [attrInt('axis', 1)]), order: [0, 1] };
    }
    case 'TensorFlowOpLayer':
      return tfOp(g, layer, ins);
    default:
      throw new Error(`${layer.name}: Keras layer ${layer.className} is not supported`);
  }
}

/** The TensorFlow ops that Keras saved as TensorFlowOpLayer nodes; constant inputs come with them. */
function tfOp(g: Graph, layer: KerasLayer, ins: Value[]): Value {
  const def = layer.config.node_def as { op: string; input: string[]; attr: Record<string, { list?: { i?: string[] }; b?: boolean }> };
  const constants = (layer.config.constants ?? {}) as Record<string, unknown>;
  // Tensor inputs are the inbound layers, in order; the other positions are constants.
  const args: (Value | unknown)[] = [];
  let next = 0;
  for (let i = 0; i < def.input.length; i++) args.push(String(i) in constants ? constants[String(i)] : ins[next++]);
  const x = args[0] as Value;
  const rank = x.order.length;
  switch (def.op) {
    case 'Pad': {
      const pads = args[1] as [number, number][];
      const begins = x.order.map((k) => pads[k]![0]);
      const ends = x.order.map((k) => pads[k]![1]);
      return { name: g.node('Pad', [x.name, g.ints([...begins, ...ends])]), order: x.order };
    }
    case 'Squeeze': {
      const dims = (def.attr.squeeze_dims?.list?.i ?? []).map((d) => norm(Number(d), rank));
      if (dims.length === 0) throw new Error(`${layer.name}: Squeeze without explicit axes is not supported`);
      const name = g.node('Squeeze', [x.name, g.ints(dims.map((k) => x.order.indexOf(k)))]);
      return { name, order: dropAxes(x.order, dims) };
    }
    case 'ExpandDims': {
      const d = norm(Number(args[1]), rank + 1);
      // The new axis goes last in ONNX terms; `order` says where it is in Keras terms.
      const name = g.node('Unsqueeze', [x.name, g.ints([rank])]);
      return { name, order: [...x.order.map((k) => (k >= d ? k + 1 : k)), d] };
    }
    case 'Transpose': {
      const perm = args[1] as number[];
      // New Keras axis j is old axis perm[j]: only the labels change.
      return { name: x.name, order: x.order.map((k) => perm.indexOf(k)) };
    }
    case 'ConcatV2': {
      const axis = norm(Number(args.at(-1)), rank);
      const parts = (args.slice(0, -1) as Value[]).map((v) => g.toOrder(v, x.order));
      return {
        name: g.node(
          'Concat',
          parts.map((v) => v.name),
          [attrInt('axis', x.order.indexOf(axis))],
        ),
        order: x.order,
      };
    }
    case 'Add':
    case 'AddV2': {
      const y = g.toOrder(args[1] as Value, x.order);
      return { name: g.node('Add', [x.name, y.name]), order: x.order };
    }
    case 'Mean':
    case 'Max': {
      const raw = args[1];
      const axes = (Array.isArray(raw) ? (raw as number[]) : [raw as number]).map((k) => norm(Number(k), rank));
      const keep = def.attr.keep_dims?.b === true;
      const name = g.node(
        def.op === 'Mean' ? 'ReduceMean' : 'ReduceMax',
        [x.name],
        [
          attrInts(
            'axes',
            axes.map((k) => x.order.indexOf(k)),
          ),
          attrInt('keepdims', keep ? 1 : 0),
        ],
      );
      return { name, order: keep ? x.order : dropAxes(x.order, axes) };
    }
    default:
      throw new Error(`${layer.name}: TensorFlow op ${def.op} is not supported`);
  }
}

function activation(g: Graph, x: Value, kind: string, onPreActivation: (v: Value) => void): Value {
  onPreActivation(x);
  const op = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh', softmax: 'Softmax' }[kind];
  if (kind === 'linear') return x;
  if (!op) throw new Error(`activation ${kind} is not supported`);
  if (op === 'Softmax') {
    const v = g.toOrder(x, identity(x.order.length));
    return { name: g.node(op, [v.name], [attrInt('axis', -1)]), order: v.order };
  }
  return { name: g.node(op, [x.name]), order: x.order };
}

/** ONNX pads [begins..., ends...] for Keras 'valid' or 'same' (TensorFlow puts the odd one at the end). */
function samePads(padding: string, kernel: number[], strides: number[], dilations: number[]): number[] {
  if (padding === 'valid') return kernel.flatMap(() => [0]).concat(kernel.map(() => 0));
  if (padding !== 'same') throw new Error(`padding ${padding} is not supported`);
  if (strides.some((s) => s !== 1)) throw new Error("'same' padding with strides is not supported");
  const total = kernel.map((k, i) => (k - 1) * dilations[i]!);
  return [...total.map((t) => Math.floor(t / 2)), ...total.map((t) => t - Math.floor(t / 2))];
}

const NCHW = [0, 3, 1, 2];
const identity = (n: number) => Array.from({ length: n }, (_, i) => i);
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
/** `order` without the given Keras axes, the remaining Keras axes renumbered. */
const dropAxes = (order: number[], axes: number[]) => order.filter((k) => !axes.includes(k)).map((k) => k - axes.filter((a) => a < k).length);

function need(w: Map<string, Weight>, role: string, layer: KerasLayer): Weight {
  const x = w.get(role);
  if (!x) throw new Error(`${layer.name}: weight ${role} is missing`);
  return x;
}

/** ONNX nodes and initialisers under construction. */
export class Graph {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private count = 0;
  private readonly transposes = new Map<string, Value>();

  /** The nodes added so far, in order. */
  nodeList(): onnxProto.onnx.INodeProto[] {
    return this.nodes;
  }

  /** The weights and constants added so far. */
  initializerList(): onnxProto.onnx.ITensorProto[] {
    return this.initializers;
  }

  node(op: string, inputs: string[], attribute: onnxProto.onnx.IAttributeProto[] = [], output?: string): string {
    const name = output ?? `${op.toLowerCase()}_${this.count++}`;
    this.nodes.push({ opType: op, name, input: inputs, output: [name], attribute });
    return name;
  }

  floats(data: Float32Array, dims: number[]): string {
    const name = `w_${this.count++}`;
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes(data) });
    return name;
  }

  ints(data: number[]): string {
    const name = `c_${this.count++}`;
    this.initializers.push({ name, dims: [data.length], dataType: onnx.TensorProto.DataType.INT64, rawData: bytes(BigInt64Array.from(data.map(BigInt))) });
    return name;
  }

  /** `v` with its axes in the Keras order `want`, transposed once per tensor and layout. */
  toOrder(v: Value, want: number[]): Value {
    if (v.order.every((k, i) => k === want[i])) return v;
    const key = `${v.name}:${v.order.join(',')}:${want.join(',')}`;
    let t = this.transposes.get(key);
    if (!t) {
      t = {
        name: this.node(
          'Transpose',
          [v.name],
          [
            attrInts(
              'perm',
              want.map((k) => v.order.indexOf(k)),
            ),
          ],
        ),
        order: want,
      };
      this.transposes.set(key, t);
    }
    return t;
  }
}

const bytes = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
export const attrInts = (name: string, ints: number[]): onnxProto.onnx.IAttributeProto => ({ name, ints, type: onnx.AttributeProto.AttributeType.INTS });
export const attrInt = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, i, type: onnx.AttributeProto.AttributeType.INT });
const attrFloat = (name: string, f: number): onnxProto.onnx.IAttributeProto => ({ name, f, type: onnx.AttributeProto.AttributeType.FLOAT });

function valueInfo(name: string, shape: (number | string)[] | undefined): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: shape && { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

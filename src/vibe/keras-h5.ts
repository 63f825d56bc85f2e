// A Keras model saved as HDF5: the layer graph from the `model_config` attribute and each
// layer's weights from `model_weights/<layer>`, named by role (kernel, bias, gamma, ...).
import { Dataset, File, Group } from 'jsfive';
import { z } from 'zod';

export interface KerasLayer {
  className: string;
  name: string;
  /** The layer's Keras config, as saved. */
  config: Record<string, unknown>;
  /** Names of the layers whose outputs this layer takes, in order. */
  inbound: string[];
}

export interface Weight {
  shape: number[];
  data: Float32Array;
}

export interface KerasModel {
  layers: KerasLayer[];
  inputs: string[];
  outputs: string[];
  /** Per layer, its weights by role: 'kernel', 'bias', 'gamma', 'beta', 'moving_mean', ... */
  weights: Map<string, Map<string, Weight>>;
}

// model_config is input from a file: checked before it is trusted.
const ConfigSchema = z.object({
  class_name: z.enum(['Model', 'Functional']),
  config: z.object({
    layers: z.array(
      z.object({
        class_name: z.string(),
        name: z.string(),
        config: z.record(z.string(), z.unknown()),
        inbound_nodes: z.array(z.array(z.array(z.unknown()))),
      }),
    ),
    input_layers: z.array(z.array(z.unknown())),
    output_layers: z.array(z.array(z.unknown())),
  }),
});

export function readKerasH5(bytes: Uint8Array): KerasModel {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let file: File;
  try {
    file = new File(buffer, 'model.h5');
  } catch (e) {
    throw new Error(`not an HDF5 file (${e instanceof Error ? e.message : String(e)})`);
  }
  const configText = file.attrs.model_config;
  if (typeof configText !== 'string') throw new Error('the HDF5 file has no model_config attribute (not a whole Keras model)');
  const parsed = ConfigSchema.safeParse(JSON.parse(configText));
  if (!parsed.success) throw new Error(`model_config is not a functional Keras model: ${parsed.error.issues[0]?.message}`);
  const config = parsed.data.config;
  const layers: KerasLayer[] = config.layers.map((l) => ({
    className: l.class_name,
    name: l.name,
    config: l.config,
    // Functional models list one call per node; these layers are each called once.
    inbound: (l.inbound_nodes[0] ?? []).map((edge) => String(edge[0])),
  }));
  const weightsRoot = file.get('model_weights');
  if (!(weightsRoot instanceof Group)) throw new Error('the HDF5 file has no model_weights group');
  const weights = new Map<string, Map<string, Weight>>();
  for (const layer of layers) {
    if (!weightsRoot.keys.includes(layer.name)) continue;
    const group = weightsRoot.get(layer.name);
    const names = (group.attrs.weight_names as string[] | undefined) ?? [];
    const byRole = new Map<string, Weight>();
    for (const raw of names) {
      // Names are NUL-padded fixed-length strings like 'conv2d/kernel_1:0'.
      const name = raw.replace(/\0+$/, '');
      const ds = group instanceof Group ? group.get(name) : undefined;
      if (!(ds instanceof Dataset)) throw new Error(`weight ${layer.name}/${name} is missing`);
      if (ds.dtype !== '<f4') throw new Error(`weight ${layer.name}/${name} has dtype ${String(ds.dtype)}, expected little-endian float32`);
      const role = name.slice(name.lastIndexOf('/') + 1).replace(/(_\d+)?:\d+$/, '');
      byRole.set(role, { shape: ds.shape, data: Float32Array.from(ds.value) });
    }
    weights.set(layer.name, byRole);
  }
  return {
    layers,
    inputs: config.input_layers.map((x) => String(x[0])),
    outputs: config.output_layers.map((x) => String(x[0])),
    weights,
  };
}

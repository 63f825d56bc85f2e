// The native addon (native/), loaded once: its users type the part they call.
import { createRequire } from 'node:module';

export const addon: unknown = createRequire(import.meta.url)('../../../native/build/Release/audio_ident_fp.node');

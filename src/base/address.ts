// The client address that per-address limits count, for HTTP requests and listening sessions alike.

/**
 * Behind a trusted proxy, the last X-Forwarded-For entry (the one the nearest proxy added; the
 * others are the client's own say); otherwise the socket's peer.
 */
export function clientAddress(forwarded: string | string[] | undefined, peer: string | undefined, trustProxy: boolean): string {
  const header = trustProxy ? forwarded : undefined;
  const last = (Array.isArray(header) ? header.at(-1) : header)?.split(',').at(-1)?.trim();
  return last || peer || 'unknown';
}

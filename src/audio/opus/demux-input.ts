// The input side of our streaming demultiplexers: bytes appended as they arrive, parsed from the
// front. A parser that stops for want of bytes says how many it needs; until they are all there,
// appending costs no copying, so a large element fed in tiny pieces stays linear.
export class DemuxInput {
  /** Unparsed bytes start at buf[pos]. */
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** Stream offset of buf[0]. */
  private base = 0;
  private waiting: Uint8Array[] = [];
  private waitingBytes = 0;
  private need = 0;

  /** Stream offset of the next unparsed byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  get available(): number {
    return this.buf.length - this.pos;
  }

  /** The unparsed bytes at hand (a view, valid until the next append). */
  unread(): Uint8Array {
    return this.buf.subarray(this.pos);
  }

  /** The parser is done with this many bytes. */
  consume(bytes: number): void {
    this.pos += bytes;
  }

  /** Adds bytes; true when the parser should run (it has what it last asked for). */
  append(bytes: Uint8Array): boolean {
    this.waiting.push(bytes);
    this.waitingBytes += bytes.length;
    if (this.available + this.waitingBytes < this.need) return false;
    const merged = new Uint8Array(this.available + this.waitingBytes);
    merged.set(this.buf.subarray(this.pos));
    let o = this.available;
    for (const w of this.waiting) {
      merged.set(w, o);
      o += w.length;
    }
    this.base += this.pos;
    this.buf = merged;
    this.pos = 0;
    this.waiting = [];
    this.waitingBytes = 0;
    this.need = 0;
    return true;
  }

  /** The parser stopped: it needs this many unparsed bytes before it can go on. */
  wait(bytes: number): void {
    this.need = bytes;
  }

  /** Bytes received and not parsed (an unfinished element or page at the end of the input). */
  get unparsed(): number {
    return this.available + this.waitingBytes;
  }
}

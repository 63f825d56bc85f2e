// A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise (logs).
export class ProgressBar {
  private lastTenth = -1;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly label: string) {}

  update(done: number, total: number, detail: string): void {
    const frac = total === 0 ? 1 : done / total;
    if (this.tty) {
      const width = 30;
      const fill = Math.round(frac * width);
      process.stderr.write(`\r${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${done}/${total} ${detail}\x1b[K`);
      if (done === total) process.stderr.write('\n');
      return;
    }
    const tenth = Math.floor(frac * 10);
    if (tenth !== this.lastTenth) {
      this.lastTenth = tenth;
      process.stderr.write(`${this.label} ${done}/${total} ${detail}\n`);
    }
  }
}

/** Human output: aligned tables and compact unit ranges. */

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** [0,1,2,5,7,8] -> "0-2,5,7-8" */
export function unitRanges(units: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < units.length) {
    let j = i;
    while (j + 1 < units.length && units[j + 1] === units[j]! + 1) j++;
    out.push(i === j ? `${units[i]}` : `${units[i]}-${units[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

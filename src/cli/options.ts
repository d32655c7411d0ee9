// Option helpers shared by main.ts and the commands, apart from command.ts so that main.ts (loaded on every
// start) does not load what an action needs.
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
// Marked rather than compared by identity: commands bundled into dist/cli-GROUP.cjs carry their own copy.
Object.defineProperty(collect, 'repeatable', { value: true });

/** Whether an option's parser collects repeated values (so giving the option twice is not a mistake). */
export function isRepeatable(parse: unknown): boolean {
  return typeof parse === 'function' && (parse as { repeatable?: boolean }).repeatable === true;
}

// V8's optimizing compiler (TurboFan) for commands that run one loop over thousands of items in a process of
// their own. Its compilations run on V8's background threads, and a batch's worker threads each compile the same
// functions again (three isolates on two cores): for a run of a second, compiling costs more than the optimized
// code saves. A larger interrupt budget (the bytecode executed before V8 considers optimizing a function again)
// leaves the short-lived and rarely-hot functions to the baseline tiers.
import v8 from 'node:v8';

/**
 * Three times V8 11's default (132 KB; Node 20), which measured best: 2,000 P-256 certificates in `issue batch`,
 * 9 interleaved runs, 1.23 → 1.09 s of CPU and 0.72 → 0.67 s wall (about 2×, 6× and 15× the default did less
 * well). Other V8 versions have other defaults and tiers, and were not measured: they keep theirs.
 */
const INTERRUPT_BUDGET = 400_000;

let raised = false;

/**
 * Raises V8's interrupt budget for the rest of this process, worker threads started later included. Only for a
 * process that is mcpki's alone (the command line), never from the library: it changes every isolate's tiering.
 */
export function tierForLongLoops(): void {
  if (raised || !process.versions.v8.startsWith('11.')) return;
  raised = true;
  try {
    v8.setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`);
  } catch {
    // an embedder that refuses flags keeps V8's tiering
  }
}

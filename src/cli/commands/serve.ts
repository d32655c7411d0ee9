import { loadConfig, startService } from '../../index.js';
import { join } from 'node:path';
import type { Command } from 'commander';
import { action } from '../command.js';
import { VERSION } from '../version.js';
import { stdoutIsTTY, writeStdout } from '../stdout.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('the renewal service: apply mcpki.yaml on a schedule, with metrics; one per home')
    .option('-c, --config <file>', 'the declaration file (default ./mcpki.yaml)', 'mcpki.yaml')
    .option('--schedule <cron>', 'when to check, as a cron expression (default: hourly at a random minute)')
    .option(
      '--metrics <host:port>',
      'serve /metrics (Prometheus) and /healthz here, loopback only, e.g. 127.0.0.1:9464',
    )
    .addHelpText(
      'after',
      `
Logs are JSON lines on stdout unless stdout is a terminal. SIGHUP re-reads the file (an invalid file keeps
the old one and logs why); SIGTERM finishes the check in flight and exits 0.
Examples:
  mcpki serve -c /etc/mcpki/mcpki.yaml --metrics 127.0.0.1:9464
  mcpki serve --schedule '*/15 * * * *'`,
    )
    .action(
      action(async ({ context, out }, flags: { config: string; schedule?: string; metrics?: string }) => {
        const json = out.json || !stdoutIsTTY();
        const log = (event: string, fields: Record<string, unknown> = {}) => {
          const at = new Date().toISOString();
          if (json) writeStdout(JSON.stringify({ at, event, ...fields }) + '\n');
          else
            writeStdout(
              `${at.slice(11, 19)} ${event} ${Object.entries(fields)
                .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
                .join(' ')}\n`,
            );
        };
        const service = await startService(context, {
          loadConfig: () => loadConfig(flags.config, { cacheDir: join(context.home, 'cache'), context }),
          schedule: flags.schedule,
          metrics: flags.metrics,
          log,
          version: VERSION,
          lowMemory: true,
        });
        await new Promise<void>((resolve) => {
          let stopping = false;
          const stop = (signal: string) => {
            if (stopping) return;
            stopping = true;
            log('service.stopping', { signal });
            void service.stop().then(resolve);
          };
          process.on('SIGTERM', () => stop('SIGTERM'));
          process.on('SIGINT', () => stop('SIGINT'));
          process.on('SIGHUP', () => void service.reload());
        });
      }),
    );
}

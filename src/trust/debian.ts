// Debian, Ubuntu and derivatives: local anchors in /usr/local/share/ca-certificates (the file must end in .crt),
// update-ca-certificates rebuilds /etc/ssl/certs/ca-certificates.crt and the hashed links next to it.
import { findTool, isDirectory } from './common.js';
import { AnchorDirStore, type AnchorStoreLayout } from './system.js';

export const DEBIAN_LAYOUT: AnchorStoreLayout = {
  name: 'system:debian',
  anchorDir: '/usr/local/share/ca-certificates',
  tool: 'update-ca-certificates',
  toolArgs: [],
  // without --fresh the script keeps the /etc/ssl/certs/mcpki-….pem link and its hash link, both dangling
  uninstallToolArgs: ['--fresh'],
  bundles: ['/etc/ssl/certs/ca-certificates.crt'],
  installHint: 'install the ca-certificates package: apt-get install ca-certificates',
};

/** The Debian-style store when this machine has one, else null. */
export function detectDebian(home: string): AnchorDirStore | null {
  if (!findTool(DEBIAN_LAYOUT.tool) || !isDirectory(DEBIAN_LAYOUT.anchorDir)) return null;
  return new AnchorDirStore(DEBIAN_LAYOUT, home);
}

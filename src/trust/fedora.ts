// Fedora, RHEL, CentOS, Rocky, Alma: anchors in /etc/pki/ca-trust/source/anchors, `update-ca-trust extract`
// (p11-kit) rebuilds /etc/pki/ca-trust/extracted/, which /etc/pki/tls/certs/ca-bundle.crt points into.
import { findTool, isDirectory } from './common.js';
import { AnchorDirStore, type AnchorStoreLayout } from './system.js';

export const FEDORA_LAYOUT: AnchorStoreLayout = {
  name: 'system:fedora',
  anchorDir: '/etc/pki/ca-trust/source/anchors',
  tool: 'update-ca-trust',
  toolArgs: ['extract'],
  bundles: ['/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', '/etc/pki/tls/certs/ca-bundle.crt'],
  installHint: 'install the ca-certificates package: dnf install ca-certificates',
};

/** The Fedora-style store when this machine has one, else null. */
export function detectFedora(home: string): AnchorDirStore | null {
  if (!findTool(FEDORA_LAYOUT.tool) || !isDirectory(FEDORA_LAYOUT.anchorDir)) return null;
  return new AnchorDirStore(FEDORA_LAYOUT, home);
}

import { identityOf } from '../pki/index.js';
import type { ClientIdentity } from './acl.js';

/**
 * The broker's `identify`: the verified client certificate's role and id from its SAN URI
 * (urn:rpm-gateway:<role>:<id>, src/pki/identity.ts), or undefined when it names none, which the ACL refuses.
 */
export function identifyClient(certificateDer: Buffer): ClientIdentity | undefined {
  const identity = identityOf(certificateDer);
  return identity.id === null ? undefined : { role: identity.role, id: identity.id };
}

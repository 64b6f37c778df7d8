/**
 * `make keys`: a new Ed25519 signing key for production. JWT_PRIVATE_KEY goes into the Secret,
 * JWT_PUBLIC_KEYS into the ConfigMap. To rotate, keep the old public key in the set until
 * the tokens it signed have expired.
 * And a new key for signed download links: LINK_SIGNING_KEYS goes into the Secret. To rotate,
 * put the new key first in the set and keep the old one after it until its links have expired.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { JWT_ALG } from '../shared/keys';
import { generateLinkKey } from '../shared/links';

const { privateKey, publicKey } = await generateKeyPair(JWT_ALG, { crv: 'Ed25519', extractable: true });
const kid = `earshot-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
const privateJwk = { ...(await exportJWK(privateKey)), kid };
const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: JWT_ALG, use: 'sig' };

process.stdout.write(`JWT_PRIVATE_KEY='${JSON.stringify(privateJwk)}'\n`);
process.stdout.write(`JWT_PUBLIC_KEYS='${JSON.stringify({ keys: [publicJwk] })}'\n`);
process.stdout.write(`LINK_SIGNING_KEYS='${JSON.stringify({ keys: [generateLinkKey(`${kid}-link`)] })}'\n`);

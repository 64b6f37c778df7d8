/** For test/images.test.ts and bench/images.ts: the env each Knative Service gives its container, and podman's output. */
import type { ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { exportJWK, generateKeyPair } from 'jose';
import { readTopology } from '../local/topology';
import { generateLinkKey } from '../shared/links';

export const envArgs = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);

export function output(child: ChildProcess) {
  let [out, err] = ['', ''];
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { exited, out: () => out, err: () => err };
}

/** A Service as the repository's manifests give it. */
export const functionSpec = (name: string) => readTopology().functions.find((f) => f.name === name)!;

/** Each Service's env once a deployer has filled in the ConfigMap and the Secret (PORT aside). */
export async function serviceEnv(): Promise<(name: string) => Record<string, string>> {
  const { functions, config } = readTopology();
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const configMap = {
    ...config,
    JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] }),
    DOWNLOAD_URL: 'https://download.earshot.example',
  };
  // Stores connect on first use: addresses no request here reaches.
  const secret: Record<string, string> = {
    MEDIA_URL: 'mongodb://127.0.0.1:1/earshot',
    USERS_DB_URL: 'https://earshot:not-a-password@db.example',
    JWT_PRIVATE_KEY: JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'k1' }),
    LINK_SIGNING_KEYS: JSON.stringify({ keys: [generateLinkKey('l1')] }),
    SENDGRID_API_KEY: 'SG.local-test-only',
  };
  return (name) => {
    const fn = functions.find((f) => f.name === name)!;
    return {
      ...configMap,
      ...Object.fromEntries(fn.secretEnv.map((key) => [key, secret[key]!])),
      ...(fn.sendsEvents && { K_SINK: 'http://127.0.0.1:1/' }),
    };
  };
}

/** The process in a container that serves `port`: node main.js with PORT in its environment. */
export async function mainProcess(port: number): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, environ] = await Promise.all([`/proc/${entry}/cmdline`, `/proc/${entry}/environ`].map((p) => readFile(p, 'utf8').catch(() => '')));
    if (cmdline === 'node\0main.js\0' && environ!.split('\0').includes(`PORT=${port}`)) return Number(entry);
  }
  throw new Error(`no container process serves port ${port}`);
}

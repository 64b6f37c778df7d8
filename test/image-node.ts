/**
 * The Node.js the images run: knative/Dockerfile's NODE_MAJOR. Where this machine's Node is another
 * major, the bundle tests run on that major's official binary, from the npm registry's
 * node-<platform>-<arch> package, kept under .tools/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const imageNodeMajor = /^ARG NODE_MAJOR=(\d+)$/m.exec(readFileSync('knative/Dockerfile', 'utf8'))![1]!;
const dir = join(process.cwd(), '.tools', `node-${imageNodeMajor}`);
export const imageNode = process.versions.node.split('.')[0] === imageNodeMajor ? process.execPath : join(dir, 'bin', 'node');

/** Fetches the binary once (about 50 MB); says why not when it cannot. */
export function fetchImageNode(): string | undefined {
  if (existsSync(imageNode)) return undefined;
  const pkg = `node-${process.platform}-${process.arch}@${imageNodeMajor}`;
  try {
    mkdirSync(dir, { recursive: true });
    const tarball = execFileSync('npm', ['pack', '--silent', pkg], { cwd: dir, encoding: 'utf8' }).trim().split('\n').at(-1)!;
    execFileSync('tar', ['-xzf', tarball, '--strip-components=1', 'package/bin/node'], { cwd: dir });
    rmSync(join(dir, tarball));
    return undefined;
  } catch (err) {
    return `cannot fetch ${pkg} from the npm registry: ${(err as Error).message.split('\n')[0]}`;
  }
}

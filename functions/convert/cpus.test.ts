import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cpuLimit } from './cpus';

const files = (entries: Record<string, string>) => (path: string) => {
  if (!(path in entries)) throw new Error(`ENOENT: ${path}`);
  return entries[path]!;
};

describe('cpuLimit', () => {
  const cores = availableParallelism();

  it('is the cgroup v2 quota, counted up, never more than the cores', () => {
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu.max': '100000 100000\n' }))).toBe(1);
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(Math.min(2, cores));
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' }))).toBe(1);
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu.max': '6400000 100000\n' }))).toBe(cores);
  });

  it('reads cgroup v1 when there is no v2', () => {
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBe(1);
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBe(cores);
  });

  it('is the cores when there is no quota', () => {
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBe(cores);
    expect(cpuLimit(files({}))).toBe(cores);
  });
});

/** Reads and validates environment variables; every error names the variable it is about. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

export function envReader(env: Env) {
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  return {
    optional: raw,

    string(name: string, fallback?: string): string {
      const value = raw(name) ?? fallback;
      if (value === undefined) throw new ConfigError(name, 'is required but not set');
      return value;
    },

    url(name: string, fallback?: string, protocols?: string[]): URL {
      const value = raw(name) ?? fallback;
      if (value === undefined) throw new ConfigError(name, 'is required but not set (a URL)');
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new ConfigError(name, `must be a URL, got "${redact(value)}"`);
      }
      if (protocols && !protocols.includes(url.protocol)) {
        throw new ConfigError(name, `must use one of ${protocols.join(' ')}, got "${url.protocol}"`);
      }
      return url;
    },

    /** A decimal number, for settings where a fraction makes sense (days in tests). */
    number(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const n = Number(value);
      const { min = -Number.MAX_VALUE, max = Number.MAX_VALUE } = range;
      if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(name, `must be a number from ${min} to ${max}, got "${value}"`);
      return n;
    },

    boolean(name: string, fallback: boolean): boolean {
      const value = raw(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new ConfigError(name, `must be true or false, got "${value}"`);
    },

    int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const n = Number(value);
      const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got "${value}"`);
      }
      return n;
    },
  };
}

/** Keeps credentials in URLs out of error messages and logs. */
export function redact(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return value.length > 80 ? `${value.slice(0, 77)}...` : value;
  }
}

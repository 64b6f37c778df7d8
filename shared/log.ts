/** One JSON object per line on stdout, the format log collectors on Knative expect. */
export type Fields = Record<string, unknown>;
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const rank: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export function createLogger(
  base: Fields,
  options: { level?: string; write?: (line: string) => void } = {},
): Logger {
  const threshold = rank[(options.level ?? 'info') as Level] ?? rank.info;
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));

  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (rank[level] < threshold) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, ...base, msg, ...fields }, errors));
  };

  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...base, ...fields }, options),
  };
}

/** A logger that keeps its lines, for tests that assert what was logged. */
export function memoryLogger(): Logger & { lines: Fields[] } {
  const lines: Fields[] = [];
  const logger = createLogger({}, { level: 'debug', write: (line) => lines.push(JSON.parse(line)) });
  return Object.assign(logger, { lines });
}

function errors(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

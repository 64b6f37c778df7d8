/** Errors as RFC 9457 problem details (`application/problem+json`). */
export const problemJson = 'application/problem+json';

export interface ProblemInit {
  status: number;
  title: string;
  detail?: string;
  type?: string;
  headers?: Record<string, string>;
  extensions?: Record<string, unknown>;
}

/** Thrown anywhere in a request; the app's error handler turns it into a problem response. */
export class Problem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  readonly type: string;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(init: ProblemInit) {
    super(init.detail ?? init.title);
    this.name = 'Problem';
    this.status = init.status;
    this.title = init.title;
    this.detail = init.detail;
    this.type = init.type ?? 'about:blank';
    this.headers = init.headers ?? {};
    this.extensions = init.extensions ?? {};
  }

  /** The problem+json document; also written by plain Node listeners that have no Response. */
  body(instance?: string): Record<string, unknown> {
    return {
      type: this.type,
      title: this.title,
      status: this.status,
      ...(this.detail && { detail: this.detail }),
      ...(instance && { instance }),
      ...this.extensions,
    };
  }

  toResponse(instance?: string): Response {
    return new Response(JSON.stringify(this.body(instance)), {
      status: this.status,
      headers: { ...this.headers, 'content-type': problemJson },
    });
  }
}

export const badRequest = (detail: string) => new Problem({ status: 400, title: 'Bad Request', detail });
export const notFound = (detail = 'No such resource.') => new Problem({ status: 404, title: 'Not Found', detail });

/** Calls to the functions with the session's token, and what a failed answer says to a person. */
import { session } from './session';

/** fetch with the session's token. A 401 means the session ended: `onSessionEnd` runs and the call throws. */
export function authorizedFetch(onSessionEnd: () => void) {
  return async (url: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${session.token}` } });
    if (res.status === 401) {
      onSessionEnd();
      throw new Error('signed out');
    }
    return res;
  };
}

/** What a failed answer says to a person: a problem's detail (or title), else its status. */
export async function problemText(res: Response): Promise<string> {
  let text = `The server answered ${res.status}.`;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    const problem = (await res.json().catch(() => ({}))) as { title?: string; detail?: string };
    text = problem.detail ?? problem.title ?? text;
  }
  const retry = res.headers.get('retry-after');
  return retry ? `${text} Try again in ${retry} s.` : text;
}

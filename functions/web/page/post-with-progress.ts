/**
 * POSTs a form with XMLHttpRequest, as fetch cannot report the bytes sent. `onProgress` gets the
 * percent sent; the answer comes back as a Response, or null if the connection was cut.
 */
export function postWithProgress(url: string, form: FormData, headers: Record<string, string>, onProgress: (percent: number) => void): Promise<Response | null> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(Math.round((e.loaded / e.total) * 100));
    };
    xhr.onerror = () => resolve(null);
    xhr.onload = () =>
      resolve(new Response(xhr.responseText, { status: xhr.status, headers: { 'content-type': xhr.getResponseHeader('content-type') ?? '', 'retry-after': xhr.getResponseHeader('retry-after') ?? '' } }));
    xhr.send(form);
  });
}

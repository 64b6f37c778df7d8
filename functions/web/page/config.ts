/** The functions' addresses, which the web function writes into the page (#config). */
export interface Endpoints {
  login: string;
  upload: string;
  download: string;
}

export const endpoints = JSON.parse(document.getElementById('config')!.textContent!) as Endpoints;

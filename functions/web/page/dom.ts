/** The page's element of that id, typed as the caller knows it to be. */
export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

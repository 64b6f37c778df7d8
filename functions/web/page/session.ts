/** The signed-in person's token, kept for the tab's life (sessionStorage). */
export const session = {
  get token() {
    return sessionStorage.getItem('earshot.token');
  },
  set token(value: string | null) {
    if (value) sessionStorage.setItem('earshot.token', value);
    else sessionStorage.removeItem('earshot.token');
  },
};

// The portal renders in the browser only: the control plane serves static files.
export const ssr = false;
export const prerender = false;

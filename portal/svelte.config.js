import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		// A single-page app: every page is rendered in the browser from one fallback page,
		// which the control plane serves for any path that is not an API or dashboard path.
		adapter: adapter({ fallback: 'index.html', precompress: true, strict: true }),
		// Hash mode: the one inline bootstrap script gets a sha256 source in a meta CSP; the
		// control plane reads the same hashes from the build and sends them in its header.
		csp: {
			mode: 'hash',
			directives: {
				'default-src': ['self'],
				'script-src': ['self'],
				'style-src': ['self', 'unsafe-inline'],
				'img-src': ['self', 'data:'],
				'font-src': ['self'],
				'connect-src': ['self'],
				'object-src': ['none'],
				'base-uri': ['none'],
				'form-action': ['self']
			}
		},
		version: { pollInterval: 0 }
	}
};

export default config;

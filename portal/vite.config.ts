import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
	plugins: [sveltekit()],
	server: {
		port: 5173,
		strictPort: true,
		// `npm run dev`: API calls go to the control plane on port 8080 (same origin for the
		// browser, so the refresh cookie works). VITE_API_BASE calls it directly instead,
		// through CORS_ORIGINS.
		proxy: { '/api': 'http://localhost:8080', '/.well-known': 'http://localhost:8080' }
	},
	test: {
		include: ['src/**/*.test.ts'],
		environment: 'node'
	}
});

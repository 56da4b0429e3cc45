import { describe, expect, it } from 'vitest';
import { endWords, resizeMessage, socketUrl } from './console';

const ticket = { ticket: 't', ws_url: 'ws://elsewhere/x', ws_path: '/api/v1/console/ws?ticket=t', expires_in: 30 };

describe('console', () => {
	it('opens the socket on the page origin, with the terminal size', () => {
		expect(socketUrl(ticket, { protocol: 'https:', host: 'cp.example.com' }, 80, 24)).toBe(
			'wss://cp.example.com/api/v1/console/ws?ticket=t&cols=80&rows=24'
		);
		expect(socketUrl(ticket, { protocol: 'http:', host: 'localhost:8080' }, 100, 30)).toBe(
			'ws://localhost:8080/api/v1/console/ws?ticket=t&cols=100&rows=30'
		);
	});

	it('sends resizes as JSON text', () => {
		expect(JSON.parse(resizeMessage(120, 40))).toEqual({ type: 'resize', cols: 120, rows: 40 });
	});

	it('says how a session ended', () => {
		expect(endWords(1000, 'idle for 900 s')).toBe('Session ended: idle for 900 s.');
		expect(endWords(1006, '')).toBe('The connection was lost.');
		expect(endWords(1011, 'error')).toBe('Session ended (1011: error).');
	});
});

import { describe, expect, it } from 'vitest';
import { SseParser } from './sse';

describe('SseParser', () => {
	it('parses named events with ids and ignores heartbeats', () => {
		const p = new SseParser();
		const events = p.push(': ping\n\nevent: tenant\nid: 7\ndata: {"a":1}\n\n: ping\n\n');
		expect(events).toEqual([{ event: 'tenant', data: '{"a":1}', id: '7' }]);
		expect(p.lastEventId).toBe('7');
	});

	it('reassembles events split across chunks at any byte', () => {
		const text = 'event: tenant\r\nid: 12\r\ndata: {"id":"x",\r\ndata: "b":2}\r\n\r\n';
		for (let cut = 1; cut < text.length; cut++) {
			const p = new SseParser();
			const events = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
			expect(events, `cut at ${cut}`).toEqual([{ event: 'tenant', data: '{"id":"x",\n"b":2}', id: '12' }]);
		}
	});

	it('defaults the type to message and keeps the id across events', () => {
		const p = new SseParser();
		expect(p.push('id: 3\n\ndata: one\n\ndata:two\r\r\n')).toEqual([
			{ event: 'message', data: 'one', id: '3' },
			{ event: 'message', data: 'two', id: '3' }
		]);
	});

	it('drops an event type with no data', () => {
		const p = new SseParser();
		expect(p.push('event: tenant\n\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x', id: null }]);
	});
});

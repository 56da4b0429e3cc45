// A Server-Sent Events parser for streams read with fetch (EventSource cannot send an
// Authorization header). It follows the HTML standard's rules: lines end in \n, \r\n or \r;
// a blank line dispatches; `:` lines are comments (heartbeats); `id:` sets the last event
// id even for events without data; `data:` lines are joined with \n.

export interface SseEvent {
	event: string;
	data: string;
	id: string | null;
}

export class SseParser {
	private buffer = '';
	private event = '';
	private data: string[] = [];
	private sawData = false;
	lastEventId: string | null = null;

	/** Feed decoded text; returns the events completed by it. */
	push(text: string): SseEvent[] {
		this.buffer += text;
		const out: SseEvent[] = [];
		for (;;) {
			const match = /\r\n|\r|\n/.exec(this.buffer);
			if (!match) break;
			// A lone \r at the very end may be the first half of \r\n: wait for more.
			if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
			const line = this.buffer.slice(0, match.index);
			this.buffer = this.buffer.slice(match.index + match[0].length);
			const event = this.line(line);
			if (event) out.push(event);
		}
		return out;
	}

	private line(line: string): SseEvent | null {
		if (line === '') {
			if (!this.sawData) {
				this.event = '';
				return null;
			}
			const event = { event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId };
			this.event = '';
			this.data = [];
			this.sawData = false;
			return event;
		}
		if (line.startsWith(':')) return null;
		const colon = line.indexOf(':');
		const field = colon === -1 ? line : line.slice(0, colon);
		let value = colon === -1 ? '' : line.slice(colon + 1);
		if (value.startsWith(' ')) value = value.slice(1);
		if (field === 'event') this.event = value;
		else if (field === 'data') {
			this.data.push(value);
			this.sawData = true;
		} else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
		return null;
	}
}

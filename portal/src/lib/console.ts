// The console's wire format (see the control plane's console/bridge.py): binary frames are
// keystrokes and terminal output, a text frame is a JSON control message (a resize).

export interface ConsoleTicket {
	ticket: string;
	ws_url: string;
	ws_path: string;
	expires_in: number;
}

/** The WebSocket URL on this page's own origin (the portal and the API share it). */
export function socketUrl(ticket: ConsoleTicket, loc: { protocol: string; host: string }, cols: number, rows: number): string {
	const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
	return `${scheme}//${loc.host}${ticket.ws_path}&cols=${cols}&rows=${rows}`;
}

export function resizeMessage(cols: number, rows: number): string {
	return JSON.stringify({ type: 'resize', cols, rows });
}

/** Words for how a session ended, from the close code and reason the server sent. */
export function endWords(code: number, reason: string): string {
	if (code === 1000 && reason) return `Session ended: ${reason}.`;
	if (code === 1000 || code === 1005) return 'Session ended.';
	if (code === 1001) return 'The control plane is restarting; open the console again.';
	if (code === 1006) return 'The connection was lost.';
	return `Session ended (${code}${reason ? `: ${reason}` : ''}).`;
}

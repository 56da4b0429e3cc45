// The API's one error shape, turned into something a form can show next to its fields:
//   {"error": {"status", "code", "message", "fields": [{"field", "message"}]}, "request_id"}

export class ApiError extends Error {
	readonly status: number;
	readonly code: string;
	/** Field name (as the API names it, e.g. "email" or "new_password") -> its problem. */
	readonly fields: Record<string, string>;
	readonly retryAfter: number | null;

	constructor(status: number, code: string, message: string, fields: Record<string, string> = {}, retryAfter: number | null = null) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.code = code;
		this.fields = fields;
		this.retryAfter = retryAfter;
	}
}

function capitalise(text: string): string {
	return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/** Build an ApiError from a response status, its parsed body (or null) and Retry-After. */
export function toApiError(status: number, body: unknown, retryAfter: string | null = null): ApiError {
	const wait = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
	const error = (body as { error?: Record<string, unknown> } | null)?.error;
	if (!error || typeof error !== 'object') {
		const message = status >= 500 ? 'The server is not answering properly; try again in a moment.' : `The request failed (${status}).`;
		return new ApiError(status, 'error', message, {}, wait);
	}
	const fields: Record<string, string> = {};
	for (const problem of Array.isArray(error.fields) ? error.fields : []) {
		const { field, message } = problem as { field?: unknown; message?: unknown };
		if (typeof field === 'string' && typeof message === 'string' && !(field in fields)) {
			fields[field] = capitalise(message);
		}
	}
	let message = typeof error.message === 'string' ? capitalise(error.message) : `The request failed (${status}).`;
	if (status === 429) message = wait ? `Too many attempts; try again in ${wait} s.` : 'Too many attempts; try again shortly.';
	return new ApiError(status, typeof error.code === 'string' ? error.code : 'error', message, fields, wait);
}

/** A problem that is not a response: the network or the server is away. */
export function networkError(): ApiError {
	return new ApiError(0, 'network', 'The control plane cannot be reached; check your connection and try again.');
}

/** Split an error into the fields a form shows and the message shown above it (those
 *  about fields the form does not have stay in the message). */
export function formErrors(error: unknown, known: readonly string[]): { fields: Record<string, string>; message: string | null } {
	if (!(error instanceof ApiError)) return { fields: {}, message: 'Something went wrong; try again.' };
	const fields: Record<string, string> = {};
	let unplaced = false;
	for (const [name, text] of Object.entries(error.fields)) {
		if (known.includes(name)) fields[name] = text;
		else unplaced = true;
	}
	const placedAll = Object.keys(fields).length > 0 && !unplaced;
	return { fields, message: placedAll ? null : error.message };
}

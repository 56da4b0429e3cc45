// Words for what the API says, in the user's terms.
import type { TenantStatus } from './types';

export const STATUS_WORDS: Record<TenantStatus, string> = {
	provisioning: 'Setting up',
	active: 'Active',
	suspending: 'Suspending',
	suspended: 'Suspended',
	resuming: 'Resuming',
	error: 'Failed',
	deleting: 'Deleting',
	deleted: 'Deleted'
};

export const BUSY: ReadonlySet<TenantStatus> = new Set(['provisioning', 'suspending', 'resuming', 'deleting']);

const STEP_WORDS: Record<string, string> = {
	clone: 'Copying the template',
	configure: 'Configuring the container',
	start: 'Starting the container',
	address: 'Waiting for its network address',
	bootstrap: 'Running the set-up commands',
	route: 'Publishing its address',
	stop: 'Stopping the container',
	delete: 'Removing the container',
	suspend: 'Stopping the container',
	resume: 'Starting the container'
};

// The API's fixed vocabularies (`error_reason`, `health`), in plain words.
const REASON_WORDS: Record<string, string> = {
	no_capacity: 'There was no room for it on our servers.',
	node_unavailable: 'The server it lives on could not be reached.',
	template_missing: 'The project’s template is not available right now.',
	provisioning_failed: 'Creating or starting its container failed.',
	bootstrap_failed: 'The project’s set-up commands failed.',
	route_failed: 'Its web address could not be set up.',
	suspend_failed: 'Suspending it failed.',
	resume_failed: 'Resuming it failed.',
	delete_failed: 'Deleting it failed.',
	internal: 'Something went wrong on our side.'
};

const HEALTH_WORDS: Record<string, string> = {
	ok: 'Running normally',
	container_stopped: 'Its container has stopped',
	container_missing: 'Its container is missing',
	app_unreachable: 'Its app does not answer',
	app_error: 'Its app answers with errors',
	address_changed: 'Its network address changed',
	unknown: 'Not known right now'
};

export function healthWords(health: string | null | undefined): string | null {
	if (!health) return null;
	return HEALTH_WORDS[health] ?? sentence(health).replace(/\.$/, '');
}

function sentence(code: string): string {
	const words = code.replace(/[_-]+/g, ' ').trim();
	return words ? words[0].toUpperCase() + words.slice(1) + '.' : '';
}

export function stepWords(step: string | null | undefined): string | null {
	if (!step) return null;
	return STEP_WORDS[step] ?? sentence(step).replace(/\.$/, '');
}

/** The failure in plain words (the API's `error_reason` is a fixed vocabulary). */
export function reasonWords(reason: string | null | undefined): string {
	if (!reason) return 'Something went wrong while we worked on it.';
	return REASON_WORDS[reason] ?? sentence(reason);
}

/** "42 s", "3 min 05 s", "2 h 07 min". */
export function duration(ms: number): string {
	const s = Math.max(0, Math.floor(ms / 1000));
	if (s < 60) return `${s} s`;
	const m = Math.floor(s / 60);
	if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
	const h = Math.floor(m / 60);
	if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
	return `${Math.floor(h / 24)} days`;
}

export function megabytes(mb: number): string {
	return mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024} GB` : `${mb} MB`;
}

export function price(cents: number): string {
	return cents === 0 ? 'free' : `$${(cents / 100).toFixed(2)} a month`;
}

export function dateTime(iso: string | null | undefined): string {
	if (!iso) return '—';
	return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

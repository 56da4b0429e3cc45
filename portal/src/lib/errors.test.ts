import { describe, expect, it } from 'vitest';
import { ApiError, formErrors, toApiError } from './errors';

describe('toApiError', () => {
	it('reads the fields the API names', () => {
		const e = toApiError(422, {
			error: {
				status: 422,
				code: 'invalid',
				message: 'invalid request: email: has an invalid domain',
				fields: [
					{ field: 'email', message: 'has an invalid domain' },
					{ field: 'email', message: 'second problem' },
					{ field: 'password', message: 'is too short' }
				]
			}
		});
		expect(e.status).toBe(422);
		expect(e.code).toBe('invalid');
		expect(e.fields).toEqual({ email: 'Has an invalid domain', password: 'Is too short' });
	});

	it('words a rate limit with its wait', () => {
		const e = toApiError(429, { error: { status: 429, code: 'rate_limited', message: 'x', fields: [] } }, '17');
		expect(e.message).toBe('Too many attempts; try again in 17 s.');
		expect(e.retryAfter).toBe(17);
	});

	it('survives a body that is not the error shape', () => {
		expect(toApiError(502, null).message).toMatch(/not answering/);
		expect(toApiError(400, 'nope').message).toBe('The request failed (400).');
	});
});

describe('formErrors', () => {
	const error = new ApiError(422, 'invalid', 'Invalid request', { subdomain: 'Is taken', node_id: 'Bad' });

	it('places known fields and keeps the message for the others', () => {
		expect(formErrors(error, ['subdomain'])).toEqual({ fields: { subdomain: 'Is taken' }, message: 'Invalid request' });
		expect(formErrors(error, ['subdomain', 'node_id'])).toEqual({
			fields: { subdomain: 'Is taken', node_id: 'Bad' },
			message: null
		});
	});

	it('shows the message when no field is named', () => {
		const e = new ApiError(402, 'payment_required', 'The free tier allows 1 tenant; you have 1');
		expect(formErrors(e, ['subdomain'])).toEqual({ fields: {}, message: 'The free tier allows 1 tenant; you have 1' });
		expect(formErrors(new Error('x'), []).message).toMatch(/went wrong/);
	});
});

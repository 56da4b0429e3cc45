import type { OperationSummary } from './lifecycle';
// The shapes of the API's answers the portal reads (see /openapi.json).

export type TenantStatus =
	| 'provisioning'
	| 'active'
	| 'suspending'
	| 'suspended'
	| 'resuming'
	| 'error'
	| 'deleting'
	| 'deleted';

export interface Tenant {
	id: string;
	name: string;
	subdomain: string;
	url: string;
	status: TenantStatus;
	project_id: string | null;
	health: string | null;
	created_at: string;
	updated_at: string;
	deleted_at: string | null;
	error_reason?: string | null;
	step?: string | null;
	step_started_at?: string | null;
	route?: string | null;
	address?: string | null;
	ram_mb?: number;
	cores?: number;
	disk_gb?: number | null;
	/** The lifecycle operation holding the tenant, if any (see lifecycle.ts). */
	operation?: OperationSummary | null;
}

export interface Page<T> {
	items: T[];
	total?: number;
	limit?: number;
	offset?: number;
}

export interface User {
	id: string;
	email: string;
	status: 'active' | 'disabled';
	email_verified: boolean;
	created_at: string;
}

export interface AuthConfig {
	registration_token_required: boolean;
	email_verification_required: boolean;
	password_reset_available: boolean;
	billing_enabled: boolean;
}

export interface Project {
	id: string;
	slug: string;
	name: string;
	ram_mb: number;
	cores: number;
	disk_gb: number;
	is_default?: boolean;
}

export interface Tier {
	name: string;
	label: string;
	max_tenants: number;
	max_ram_mb: number;
	price_cents: number;
	purchasable: boolean;
}

export interface BillingStatus {
	tier: Tier;
	usage: { tenants: number; ram_mb: number };
	limits: { max_tenants: number; max_ram_mb: number };
	subscription: {
		id: string;
		status: string;
		paid: boolean;
		current_period_end: string | null;
		grace_until: string | null;
	} | null;
	on_hold: boolean;
	hold_reason: string | null;
	tiers: Tier[];
}

export interface TokenAnswer {
	access_token: string;
	expires_in: number;
	refresh_token?: string | null;
}

import { tick } from 'svelte';

/** After a failed submit: move the focus to the first field the API named, else to the
 *  form's alert, so a keyboard or screen-reader user lands on the problem. */
export async function focusProblem(form: HTMLFormElement | undefined): Promise<void> {
	await tick();
	const target = form?.querySelector<HTMLElement>('[aria-invalid="true"]') ?? form?.querySelector<HTMLElement>('.alert');
	if (target) {
		if (!target.hasAttribute('tabindex') && target.classList.contains('alert')) target.tabIndex = -1;
		target.focus();
	}
}

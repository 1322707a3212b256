// What the names the CLI sends may look like — app names, domains, route hosts and paths —
// checked where they enter so a mistake names its argument before any request. Route hosts
// and paths are the controller's own pure rules (route-names.ts), not a copy; app names and
// domains are zod schemas inside its handlers (api/apps.ts, api/routes.ts), so their rules are
// restated here, the same and never looser or stricter. Pure.
export { invalidHost as hostProblem, invalidPath as pathProblem, routeUri } from '../cloud-controller/route-names.ts';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why an app name would be refused, or null. */
export function appNameProblem(name: string): string | null {
  if (name === '') return 'an app name cannot be empty';
  if (name.length > 255) return 'an app name must be no more than 255 characters';
  if (/^\s/.test(name)) return 'an app name cannot begin with whitespace';
  if (name.includes('/')) return 'an app name cannot contain /';
  return null;
}

/** Why a domain (already lower-cased) is not a DNS name of two labels or more, or null. */
export function domainProblem(name: string): string | null {
  if (name.length > 253) return 'a domain must be no more than 253 characters';
  const labels = name.split('.');
  if (labels.length < 2) return 'a domain needs at least two labels, e.g. example.com';
  if (!labels.every((l) => LABEL.test(l))) return 'each label of a domain must be letters, digits and hyphens, not starting or ending with a hyphen';
  return null;
}

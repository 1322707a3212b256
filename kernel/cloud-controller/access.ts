// Who may see and change what, from a user's roles (Cloud Foundry v3's role model). Pure: the
// roles and the spaces of the orgs they name in, one Access out, which every API handler asks
// through api/scope.ts. A space a user cannot read does not exist for them (404); one they
// can read but not write answers 403.

export const ORG_ROLE_TYPES = ['organization_manager', 'organization_user', 'organization_auditor'] as const;
export const SPACE_ROLE_TYPES = ['space_manager', 'space_developer', 'space_auditor'] as const;
export const ROLE_TYPES = [...ORG_ROLE_TYPES, ...SPACE_ROLE_TYPES] as const;

export type OrgRoleType = (typeof ORG_ROLE_TYPES)[number];
export type SpaceRoleType = (typeof SPACE_ROLE_TYPES)[number];
export type RoleType = OrgRoleType | SpaceRoleType;

export function isSpaceRole(type: RoleType): type is SpaceRoleType {
  return (SPACE_ROLE_TYPES as readonly string[]).includes(type);
}

/** A role as access needs it: an org role names its org, a space role its space. */
export interface RoleGrant {
  type: RoleType;
  organization_guid: string | null;
  space_guid: string | null;
}

export interface SpaceRef {
  guid: string;
  organization_guid: string;
}

export type Mode = 'read' | 'write';

export interface Access {
  admin: boolean;
  /** Spaces whose apps, routes, packages, builds, droplets, processes, logs and events the user reads. */
  readableSpaces: ReadonlySet<string>;
  /** Spaces where the user changes those (space developers). */
  writableSpaces: ReadonlySet<string>;
  /** Orgs the user sees: any role in the org or in one of its spaces. */
  visibleOrgs: ReadonlySet<string>;
  /** Orgs whose spaces and roles the user manages (organization managers). */
  managedOrgs: ReadonlySet<string>;
  /** Spaces whose roles the user manages (space managers, and the org's managers). */
  managedSpaces: ReadonlySet<string>;
}

/** Space roles that read a space's resources; only developers change them. */
const READS_SPACE: ReadonlySet<RoleType> = new Set(['space_developer', 'space_auditor', 'space_manager']);

/**
 * The access of a user with these roles. `spaces` must hold every space of the orgs the user
 * manages and every space the user has a role in (more is harmless).
 */
export function accessOf(user: { admin: boolean }, roles: readonly RoleGrant[], spaces: readonly SpaceRef[]): Access {
  const orgOf = new Map(spaces.map((s) => [s.guid, s.organization_guid]));
  const readable = new Set<string>();
  const writable = new Set<string>();
  const visibleOrgs = new Set<string>();
  const managedOrgs = new Set<string>();
  const managedSpaces = new Set<string>();
  for (const r of roles) {
    if (r.space_guid !== null) {
      if (READS_SPACE.has(r.type)) readable.add(r.space_guid);
      if (r.type === 'space_developer') writable.add(r.space_guid);
      if (r.type === 'space_manager') managedSpaces.add(r.space_guid);
      const org = orgOf.get(r.space_guid);
      if (org) visibleOrgs.add(org);
    } else if (r.organization_guid !== null) {
      visibleOrgs.add(r.organization_guid);
      if (r.type === 'organization_manager') managedOrgs.add(r.organization_guid);
    }
  }
  for (const s of spaces) {
    if (managedOrgs.has(s.organization_guid)) {
      readable.add(s.guid);
      managedSpaces.add(s.guid);
    }
  }
  return { admin: user.admin, readableSpaces: readable, writableSpaces: writable, visibleOrgs, managedOrgs, managedSpaces };
}

/** What a user may do with a resource in `spaceGuid`: nothing (hidden), read, or write. */
export function spaceAccess(a: Access, spaceGuid: string): 'none' | Mode {
  if (a.admin || a.writableSpaces.has(spaceGuid)) return 'write';
  return a.readableSpaces.has(spaceGuid) ? 'read' : 'none';
}

/** Whether `mode` is allowed in the space, or how to refuse: hidden (404) or forbidden (403). */
export function check(a: Access, spaceGuid: string, mode: Mode): 'ok' | 'hidden' | 'forbidden' {
  const has = spaceAccess(a, spaceGuid);
  if (has === 'none') return 'hidden';
  return mode === 'write' && has === 'read' ? 'forbidden' : 'ok';
}

/** The spaces a list may show: undefined for all (admins), else the readable ones. */
export function readableSpaceList(a: Access): string[] | undefined {
  return a.admin ? undefined : [...a.readableSpaces];
}

/** A list filter narrowed to what is allowed: undefined means "no filter". */
export function within(requested: readonly string[] | undefined, allowed: readonly string[] | undefined): string[] | undefined {
  if (allowed === undefined) return requested ? [...requested] : undefined;
  if (requested === undefined) return [...allowed];
  const ok = new Set(allowed);
  return requested.filter((g) => ok.has(g));
}

/** Whether the user sees an org (admins see all). */
export function seesOrg(a: Access, orgGuid: string): boolean {
  return a.admin || a.visibleOrgs.has(orgGuid);
}

/** Whether the user creates and deletes the org's spaces and gives its roles (admins, org managers). */
export function managesOrg(a: Access, orgGuid: string): boolean {
  return a.admin || a.managedOrgs.has(orgGuid);
}

/** The orgs a list may show: undefined for all (admins), else the visible ones. */
export function visibleOrgList(a: Access): string[] | undefined {
  return a.admin ? undefined : [...a.visibleOrgs];
}

/** Whether the user sees a role: an org role in a visible org, a space role in a readable space. */
export function seesRole(a: Access, role: RoleGrant): boolean {
  if (a.admin) return true;
  return role.space_guid !== null ? a.readableSpaces.has(role.space_guid) : role.organization_guid !== null && a.visibleOrgs.has(role.organization_guid);
}

/** Whether the user may give or take a role: org roles by the org's managers; space roles by
 *  the org's managers and the space's managers. `orgGuid` is the role's org (the space's org
 *  for a space role). */
export function managesRole(a: Access, role: { space_guid: string | null }, orgGuid: string): boolean {
  if (managesOrg(a, orgGuid)) return true;
  return role.space_guid !== null && a.managedSpaces.has(role.space_guid);
}

/** A domain as access needs it: a private domain names its org, a shared one null. */
export interface DomainOwner {
  organization_guid: string | null;
}

/** Whether the user sees a domain: a shared one always, a private one when it sees the org. */
export function seesDomain(a: Access, domain: DomainOwner): boolean {
  return domain.organization_guid === null || seesOrg(a, domain.organization_guid);
}

/** Whether the user creates or deletes a domain: shared ones admins only, private ones also the org's managers. */
export function managesDomain(a: Access, domain: DomainOwner): boolean {
  return domain.organization_guid === null ? a.admin : managesOrg(a, domain.organization_guid);
}

/** The `where` narrowing a domain list to what the user sees: undefined for all (admins). */
export function visibleDomainWhere(a: Access): { $or: Array<{ organization_guid: string[] | null }> } | undefined {
  return a.admin ? undefined : { $or: [{ organization_guid: null }, { organization_guid: [...a.visibleOrgs] }] };
}

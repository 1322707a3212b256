// Paging of v3 lists, pure: `page` and `per_page` from the query, and the pagination block
// with first/last/next/previous links that keep the caller's other query parameters.

export const MAX_PER_PAGE = 5000;
export const DEFAULT_PER_PAGE = 50;

export interface Page {
  page: number;
  perPage: number;
}

export interface Pagination {
  total_results: number;
  total_pages: number;
  first: { href: string };
  last: { href: string };
  next: { href: string } | null;
  previous: { href: string } | null;
}

export interface Paged<T> {
  pagination: Pagination;
  resources: T[];
}

/** Rows to skip and take for a page. */
export function window(p: Page): { offset: number; limit: number } {
  return { offset: (p.page - 1) * p.perPage, limit: p.perPage };
}

export function totalPages(total: number, perPage: number): number {
  return Math.max(1, Math.ceil(total / perPage));
}

/** `base` is the list's absolute URL with its query; page and per_page are replaced in each link. */
export function pagination(base: URL, total: number, p: Page): Pagination {
  const pages = totalPages(total, p.perPage);
  const link = (page: number): { href: string } => {
    const u = new URL(base.href);
    u.searchParams.set('page', String(page));
    u.searchParams.set('per_page', String(p.perPage));
    return { href: u.href };
  };
  return {
    total_results: total,
    total_pages: pages,
    first: link(1),
    last: link(pages),
    next: p.page < pages ? link(p.page + 1) : null,
    previous: p.page > 1 ? link(Math.min(p.page - 1, pages)) : null,
  };
}

export function paged<T>(base: URL, total: number, p: Page, resources: T[]): Paged<T> {
  return { pagination: pagination(base, total, p), resources };
}

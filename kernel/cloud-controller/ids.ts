// Guids and timestamps of new records, in one place.
import { randomUUID } from 'node:crypto';

export const newGuid = (): string => randomUUID();

/** ISO-8601 with milliseconds: what the tables store (presenters drop the fraction). */
export const now = (): string => new Date().toISOString();

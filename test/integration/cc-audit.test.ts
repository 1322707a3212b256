// The cloud controller's audit suite (test/helpers/cc-audit-suite.ts) on SQLite, the database of a
// single controller.
import anyTest, { type TestFn } from 'ava';
import { sqliteDbUrl } from '../helpers/cc-controller.ts';
import { registerCcAuditSuite, type CcAuditContext } from '../helpers/cc-audit-suite.ts';

registerCcAuditSuite(anyTest as TestFn<CcAuditContext>, { dbUrl: sqliteDbUrl });

// The cloud controller's audit suite (test/helpers/cc-audit-suite.ts) on PostgreSQL: a private
// cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcAuditSuite, type CcAuditContext } from '../helpers/cc-audit-suite.ts';
import { onPostgres } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcAuditContext>;
onPostgres(test, 'cc_audit', (dbUrl) => registerCcAuditSuite(test, { dbUrl }));

// The cloud controller's quotas suite (test/helpers/cc-quotas-suite.ts) on SQLite, the database of a
// single controller.
import anyTest, { type TestFn } from 'ava';
import { sqliteDbUrl } from '../helpers/cc-controller.ts';
import { registerCcQuotasSuite, type CcQuotasContext } from '../helpers/cc-quotas-suite.ts';

registerCcQuotasSuite(anyTest as TestFn<CcQuotasContext>, { dbUrl: sqliteDbUrl });

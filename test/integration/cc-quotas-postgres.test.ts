// The cloud controller's quotas suite (test/helpers/cc-quotas-suite.ts) on PostgreSQL: a private
// cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcQuotasSuite, type CcQuotasContext } from '../helpers/cc-quotas-suite.ts';
import { onPostgres } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcQuotasContext>;
onPostgres(test, 'cc_quotas', (dbUrl) => registerCcQuotasSuite(test, { dbUrl }));

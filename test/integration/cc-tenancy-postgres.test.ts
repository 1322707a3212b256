// The cloud controller's tenancy suite (test/helpers/cc-tenancy-suite.ts) on PostgreSQL: a private
// cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcTenancySuite, type CcTenancyContext } from '../helpers/cc-tenancy-suite.ts';
import { onPostgres } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcTenancyContext>;
onPostgres(test, 'cc_tenancy', (dbUrl) => registerCcTenancySuite(test, { dbUrl }));

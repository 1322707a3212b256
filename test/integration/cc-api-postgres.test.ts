// The cloud controller's REST API suite (test/helpers/cc-api-suite.ts) on PostgreSQL: a
// private cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcApiSuite, type CcApiContext } from '../helpers/cc-api-suite.ts';
import { onPostgres } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcApiContext>;
onPostgres(test, 'cc_api', (dbUrl) => registerCcApiSuite(test, { dbUrl }));

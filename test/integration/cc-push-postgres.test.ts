// The cloud controller's push suite (test/helpers/cc-push-suite.ts) on PostgreSQL: a private
// cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcPushSuite, type CcPushContext } from '../helpers/cc-push-suite.ts';
import { onPostgres } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcPushContext>;
onPostgres(test, 'cc_push', (dbUrl) => registerCcPushSuite(test, { dbUrl }));

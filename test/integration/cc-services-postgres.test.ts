// The cloud controller's services suite (test/helpers/cc-services-suite.ts) on PostgreSQL: a private
// cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcServicesSuite, type CcServicesContext } from '../helpers/cc-services-suite.ts';
import { onPostgres } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcServicesContext>;
onPostgres(test, 'cc_services', (dbUrl) => registerCcServicesSuite(test, { dbUrl }));

// The cloud controller's services suite (test/helpers/cc-services-suite.ts) on SQLite, the database of a
// single controller.
import anyTest, { type TestFn } from 'ava';
import { sqliteDbUrl } from '../helpers/cc-controller.ts';
import { registerCcServicesSuite, type CcServicesContext } from '../helpers/cc-services-suite.ts';

registerCcServicesSuite(anyTest as TestFn<CcServicesContext>, { dbUrl: sqliteDbUrl });

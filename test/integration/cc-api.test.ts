// The cloud controller's REST API suite (test/helpers/cc-api-suite.ts) on SQLite, the
// database of a single controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcApiSuite, type CcApiContext } from '../helpers/cc-api-suite.ts';
import { sqliteDbUrl } from '../helpers/cc-controller.ts';

registerCcApiSuite(anyTest as TestFn<CcApiContext>, { dbUrl: sqliteDbUrl });

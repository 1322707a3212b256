// The cloud controller's push suite (test/helpers/cc-push-suite.ts) on SQLite, the database of a
// single controller.
import anyTest, { type TestFn } from 'ava';
import { sqliteDbUrl } from '../helpers/cc-controller.ts';
import { registerCcPushSuite, type CcPushContext } from '../helpers/cc-push-suite.ts';

registerCcPushSuite(anyTest as TestFn<CcPushContext>, { dbUrl: sqliteDbUrl });

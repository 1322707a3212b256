// The cloud controller's REST API suite (test/helpers/cc-api-suite.ts) on SQLite, the
// database of a single controller.
import anyTest, { type TestFn } from 'ava';
import { join } from 'node:path';
import { registerCcApiSuite, type CcApiContext } from '../helpers/cc-api-suite.ts';
import { scratchDir } from '../helpers/tmp.ts';

registerCcApiSuite(anyTest as TestFn<CcApiContext>, { dbUrl: async () => `sqlite://${join(scratchDir('cc-db'), 'cc.db')}` });

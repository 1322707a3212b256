// The cloud controller's tenancy suite (test/helpers/cc-tenancy-suite.ts) on SQLite, the database of a
// single controller.
import anyTest, { type TestFn } from 'ava';
import { sqliteDbUrl } from '../helpers/cc-controller.ts';
import { registerCcTenancySuite, type CcTenancyContext } from '../helpers/cc-tenancy-suite.ts';

registerCcTenancySuite(anyTest as TestFn<CcTenancyContext>, { dbUrl: sqliteDbUrl });

// The cloud controller's REST API suite (test/helpers/cc-api-suite.ts) on PostgreSQL: a
// private cluster started by the harness, one database for the suite's controller.
import anyTest, { type TestFn } from 'ava';
import { registerCcApiSuite, type CcApiContext } from '../helpers/cc-api-suite.ts';
import { PostgresCluster } from '../helpers/postgres.ts';

const test = anyTest as TestFn<CcApiContext>;
let cluster: PostgresCluster | undefined;

// Serial hooks: the cluster is up before the suite's controller starts, and stopped after it is killed.
test.serial.before(async () => {
  cluster = await PostgresCluster.start();
});

registerCcApiSuite(test, { dbUrl: () => cluster!.createDatabase('cc_api') });

test.serial.after.always(async () => {
  await cluster?.stop();
});

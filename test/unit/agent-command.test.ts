import test from 'ava';
import yargs from 'yargs';
import { agentCommand } from '../../orchestrator/agent/command.ts';

test('`ingot agent` requires --settings', async (t) => {
  const cli = yargs(['agent']).command(agentCommand).strict().exitProcess(false).fail((msg, err) => {
    throw err ?? new Error(msg);
  });
  await t.throwsAsync(async () => cli.parseAsync(), { message: /Missing required argument: settings/ });
});

test('`ingot agent --settings FILE` with an unreadable file fails with a sentence', async (t) => {
  const cli = yargs(['agent', '--settings', '/nonexistent/settings.json']).command(agentCommand).strict().exitProcess(false).fail((msg, err) => {
    throw err ?? new Error(msg);
  });
  await t.throwsAsync(async () => cli.parseAsync(), { message: /^Reading agent settings \/nonexistent\/settings.json: ENOENT/ });
});

// One agent process under test with what it talks to: its own mbus (nats-server with the
// agent's and the director's credentials), a loopback blobstore, and a director-side client;
// started once per file, it answers ping before the tests run. `stop` ends all of it.
import { AgentMbus } from './agent-mbus.ts';
import { DirectorClient, startAgentProcess, waitFor, type StartedAgent } from './agent-process.ts';
import { startBlobServer, type BlobServer } from './blob-server.ts';

export interface AgentHarness {
  mbus: AgentMbus;
  blobs: BlobServer;
  agent: StartedAgent;
  director: DirectorClient;
}

/** Starts the agent with these tunables (`agent:` of its settings) and waits for its pong;
 *  what it started is stopped again when it fails. */
export async function startAgentHarness(agentId: string, tunables: Record<string, unknown>): Promise<AgentHarness> {
  const h: Partial<AgentHarness> = {};
  try {
    const mbus = (h.mbus = await AgentMbus.start([agentId]));
    const blobs = (h.blobs = await startBlobServer());
    const cred = mbus.agent(agentId);
    h.agent = startAgentProcess({
      agent_id: agentId,
      mbus: { url: mbus.url, user: cred.user, password: cred.password },
      blobstore: { url: blobs.url('') },
      agent: tunables,
    });
    const director = (h.director = await DirectorClient.connect(mbus.url, mbus.director.user, mbus.director.password));
    await waitFor('the agent to answer ping', async () => (await director.call(agentId, 'ping').catch(() => undefined)) === 'pong', 20_000);
    return h as AgentHarness;
  } catch (err) {
    await stopAgentHarness(h);
    throw err;
  }
}

export async function stopAgentHarness(h: Partial<AgentHarness>): Promise<void> {
  await h.agent?.kill();
  await h.director?.close().catch(() => undefined);
  await h.blobs?.close();
  await h.mbus?.stop();
}

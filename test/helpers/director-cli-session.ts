// What the tests that drive a deployed director through the real CLI share: the CLI pointed at
// the director and logged in as its admin, and whether a deployed router answers on its status
// port.
import type { DirectorProcess } from './director.ts';

type Cli = (...args: string[]) => Promise<{ code: number | null; stderr: string }>;

/** `ingot director URL` and `ingot director login` as the fixture's admin; throws with the CLI's stderr. */
export async function loginCli(cli: Cli, director: DirectorProcess): Promise<void> {
  const target = await cli('director', director.url);
  if (target.code !== 0) throw new Error(`ingot director: ${target.stderr}`);
  const login = await cli('director', 'login', '-u', director.fixture.admin.user, '-p', director.fixture.admin.password);
  if (login.code !== 0) throw new Error(`ingot director login: ${login.stderr}`);
}

/** Whether the router at `ip` answers its /healthz (status port 8081) with 200 within a second. */
export async function routerAnswers(ip: string): Promise<boolean> {
  try {
    return (await fetch(`http://${ip}:8081/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;
  } catch {
    return false;
  }
}

// DESIGN.md §2's `-d` rule: a verb that means one thing for apps and another for a deployment's
// instances (`ingot restart web` vs `ingot -d ingot restart router/0`) is a platform command
// when `-d DEPLOYMENT` is given, anywhere on the line. Pure, so the rule is tested alone.

/** The verbs both halves of the CLI define. */
export const SHARED_VERBS: ReadonlySet<string> = new Set(['logs', 'start', 'stop', 'restart', 'ssh', 'events']);

/** The shared verb this command line uses with `-d`/`--deployment`, or undefined. */
export function deploymentVerb(argv: readonly string[]): string | undefined {
  let verb: string | undefined;
  let deployment = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '-d' || a === '--deployment') {
      deployment = true;
      i++; // its value is not the verb
    } else if (/^(-d|--deployment=).+/.test(a)) {
      deployment = true;
    } else if (!a.startsWith('-') && verb === undefined) {
      verb = a;
    }
  }
  return deployment && verb !== undefined && SHARED_VERBS.has(verb) ? verb : undefined;
}

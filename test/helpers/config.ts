import { ConfigError, loadConfig } from '../../src/config.js';

/** The problem lines loadConfig reports for env (main.ts prints them and exits 2); [] when it accepts env. */
export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

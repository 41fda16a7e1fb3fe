// A child process for test/error-tracking.test.ts: turns error tracking on the way
// `carebase serve` does (from SENTRY_DSN), then crashes with PHI in the error — an uncaught
// exception (argv[2] = "throw") or an unhandled rejection ("reject"); argv[3] is the PHI.
// Run with `node --import tsx test/helpers/crash-child.ts <mode> <phi>`.
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/platform/log.js';
import { startErrorTracking } from '../../src/platform/error-tracking/sentry.js';

const [mode, phi] = process.argv.slice(2);
const config = loadConfig();
await startErrorTracking(config.errorTracking!, createLogger('info'));
// Keeps the process alive: it must go down because of the crash, not for want of work.
setInterval(() => {}, 1000);
if (mode === 'throw') {
  setTimeout(() => {
    throw new RangeError(`cannot schedule ${phi}`);
  }, 10);
} else {
  void Promise.reject(new TypeError(`no record for ${phi}`));
}

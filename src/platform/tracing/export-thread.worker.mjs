// Entry of the span export thread (export-thread.ts): TypeScript runs through tsx's loader, as in
// bin/carebase.mjs; a thread does not inherit a loader registered in its parent.
import { register } from 'tsx/esm/api';

register();
await import('./export-thread.thread.ts');

#!/usr/bin/env node
// The `carebase` command. TypeScript runs through tsx's loader, so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
// Tracing (when configured) starts before the application's modules are imported.
await import('../src/platform/tracing/bootstrap.ts');
await import('../src/main.ts');

#!/usr/bin/env node
// The `carebase` command. TypeScript runs through tsx's loader, so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');

// The audit signing thread's loop (batch-signer.ts): signs each batch it is sent, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { signBatch } from './batch-signing.js';
import type { SignerData, SignJob, SignResult } from './batch-signer.js';

const data = workerData as SignerData;
const key = { id: data.keyId, secret: Buffer.from(data.secret.buffer, data.secret.byteOffset, data.secret.byteLength) };
const port = parentPort!;
port.on('message', ({ n, batch }: SignJob) => {
  let result: SignResult;
  try {
    result = { n, batch: signBatch(key, batch) };
  } catch (err) {
    result = { n, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(result);
});

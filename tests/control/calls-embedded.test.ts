import { describe } from 'vitest';
import { runCallsContract } from './calls.contract.ts';
import { embedded } from './support.ts';

describe('calls and campaigns on PGlite and MemoryStore (npm start’s defaults)', () => {
  runCallsContract(embedded);
});

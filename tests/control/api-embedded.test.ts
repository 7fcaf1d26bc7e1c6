import { describe } from 'vitest';
import { runControlApiContract } from './control-api.contract.ts';
import { embedded } from './support.ts';

describe('control API on PGlite and MemoryStore (npm start’s defaults)', () => {
  runControlApiContract(embedded);
});
